"""One store suite, run on SQLite and on the real PostgreSQL (each run in its own schema)."""

from __future__ import annotations

import ast
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from databases import schema_version

from imagegate.store import (
    Conflict,
    IdentityUpsert,
    SqlStore,
    Store,
    StoreUnavailable,
    ThreadUpsert,
    TraceQuery,
)
from imagegate.store.migrations import MIGRATIONS
from imagegate.store.postgres import PostgresDriver, is_transient
from imagegate.store.sqlite import SqliteDriver
from imagegate.store.sqlite import _is_transient as _sqlite_transient
from imagegate.telemetry.trace import TraceRecord, new_trace_id

PG_DSN = os.environ.get("IMAGEGATE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        s = SqlStore(SqliteDriver(tmp_path / "imagegate.db"))
        await s.connect()
        yield s
        await s.close()
        return
    schema = f"ig_test_{uuid.uuid4().hex[:12]}"
    s = SqlStore(PostgresDriver(PG_DSN, schema=schema))
    await s.connect()
    try:
        yield s
    finally:
        await s.close()
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()


def make_trace(**fields: object) -> TraceRecord:
    base: dict[str, object] = {
        "id": new_trace_id(),
        "operation": "generations",
        "name": "images.generations",
    }
    base.update(fields)
    return TraceRecord(**base)  # type: ignore[arg-type]


async def test_migrations_are_recorded_and_idempotent(store: SqlStore) -> None:
    assert await schema_version(store) == MIGRATIONS[-1][0]
    store._migrated = False  # a second start-up finds everything applied
    await store.connect()
    assert await schema_version(store) == MIGRATIONS[-1][0]


async def test_trace_round_trip_keeps_every_field(store: SqlStore) -> None:
    trace = make_trace(
        name="my-run",
        started_at=1_700_000_000.25,
        duration_ms=12.5,
        status=502,
        error_code="provider_error",
        error_message="upstream said no",
        api_key_id="key_ab",
        identity_id="user-1",
        thread_id="th-1",
        prompt_id="p",
        prompt_version=3,
        requested_model="openai/dall-e-3",
        served_model="openai/dall-e-2",
        attempts=[{"model": "openai/dall-e-3", "attempt": 1, "status": 503}],
        skipped=[{"model": "x/y", "reason": "not configured"}],
        cache="miss",
        n=2,
        size="1024x1024",
        quality="hd",
        output_blobs=["ab" * 32],
        cost_usd=0.04,
        usage={"input_tokens": 10, "input_tokens_details": {"text_tokens": 10}},
        metadata={"team": "ü"},
        notes=["prompt_not_found"],
    )
    await store.write_batch([trace])
    await store.write_batch([trace])  # a retried batch must not duplicate
    got = await store.get_trace("default", trace.id)
    assert got == trace
    assert await store.count_traces("default") == 1
    assert await store.get_trace("default", "nope") is None


async def test_identity_upsert_replaces_given_and_keeps_absent(store: SqlStore) -> None:
    await store.write_batch(
        [
            IdentityUpsert(
                "u1",
                100.0,
                display_name="Ada",
                email="ada@example.com",
                metadata=[{"plan": "pro"}],
                tags=["a"],
            ),
            IdentityUpsert("u1", 200.0, display_name="Ada L."),
        ]
    )
    ident = await store.get_identity("default", "u1")
    assert ident is not None
    assert ident.display_name == "Ada L."
    assert ident.email == "ada@example.com"
    assert ident.metadata == [{"plan": "pro"}]
    assert ident.tags == ["a"]
    assert (ident.created_at, ident.updated_at, ident.last_seen_at) == (100.0, 200.0, 200.0)
    await store.write_batch([IdentityUpsert("u1", 150.0, tags=["b", "c"])])  # late arrival
    ident = await store.get_identity("default", "u1")
    assert ident is not None and ident.tags == ["b", "c"] and ident.last_seen_at == 200.0
    assert await store.get_identity("default", "u2") is None


async def test_thread_upsert_unions_tags_and_tracks_seen(store: SqlStore) -> None:
    await store.write_batch([ThreadUpsert("t1", 50.0, ["x", "y"]), ThreadUpsert("t1", 40.0, ["y"])])
    await store.write_batch([ThreadUpsert("t1", 90.0, ["z", "x"])])
    thread = await store.get_thread("default", "t1")
    assert thread is not None
    assert thread.tags == ["x", "y", "z"]
    assert (thread.first_seen_at, thread.last_seen_at) == (40.0, 90.0)
    assert await store.get_thread("default", "t2") is None


async def test_list_traces_filters_and_pages(store: SqlStore) -> None:
    traces = []
    for i in range(7):
        traces.append(
            make_trace(
                started_at=1000.0 + i,
                identity_id="a" if i % 2 else "b",
                thread_id="t" if i < 3 else None,
                name="even" if i % 2 == 0 else "odd",
                requested_model="openai/dall-e-3",
                served_model="openai/dall-e-2" if i == 4 else "openai/dall-e-3",
                status=200 if i != 5 else 429,
                cache="hit" if i == 6 else "miss",
            )
        )
    await store.write_batch(traces)
    ids_desc = sorted((t.id for t in traces), reverse=True)

    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_traces("default", TraceQuery(limit=3, cursor=cursor))
        seen += [t.id for t in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids_desc

    async def ids(**kw: object) -> set[str]:
        return {t.id for t in (await store.list_traces("default", TraceQuery(**kw))).items}  # type: ignore[arg-type]

    by_index = {i: t.id for i, t in enumerate(traces)}
    assert await ids(identity_id="a") == {by_index[i] for i in (1, 3, 5)}
    assert await ids(thread_id="t") == {by_index[i] for i in (0, 1, 2)}
    assert await ids(name="odd") == {by_index[i] for i in (1, 3, 5)}
    assert await ids(model="openai/dall-e-2") == {by_index[4]}
    assert await ids(status=429) == {by_index[5]}
    assert await ids(succeeded=False) == {by_index[5]}
    assert await ids(cache="hit") == {by_index[6]}
    assert await ids(since=1002.0, until=1004.0) == {by_index[2], by_index[3]}


async def test_identity_totals_count_requests_images_and_known_cost(store: SqlStore) -> None:
    await store.write_batch(
        [
            make_trace(identity_id="u", status=200, n=2, cost_usd=0.08),
            make_trace(identity_id="u", status=200, n=1, cost_usd=None),
            make_trace(identity_id="u", status=502, n=3, cost_usd=None),
            make_trace(identity_id="other", status=200, n=5, cost_usd=1.0),
        ]
    )
    totals = await store.identity_totals("default", "u")
    assert (totals.requests, totals.succeeded, totals.images) == (3, 2, 3)
    assert totals.cost_usd == pytest.approx(0.08)
    assert totals.cost_unknown == 1
    empty = await store.identity_totals("default", "nobody")
    assert (empty.requests, empty.cost_usd) == (0, None)


async def test_thread_traces_in_time_order(store: SqlStore) -> None:
    late, early = (
        make_trace(thread_id="t", started_at=20.0),
        make_trace(thread_id="t", started_at=10.0),
    )
    await store.write_batch([late, early, make_trace(thread_id="u")])
    assert [t.id for t in await store.thread_traces("default", "t", 10)] == [early.id, late.id]


async def test_prompts_and_versions(store: SqlStore) -> None:
    prompt = await store.create_prompt("default", "p1", "Poster", "desc", 1.0)
    assert prompt.latest_version == 0
    with pytest.raises(Conflict):
        await store.create_prompt("default", "p1", None, None, 2.0)
    assert await store.get_prompt_version("default", "p1", None) is None
    v1 = await store.add_prompt_version(
        "default", "p1", "a {{input}}", None, {"size": "64x64"}, 3.0
    )
    v2 = await store.add_prompt_version("default", "p1", "b {{input}}", "placeholder/x", {}, 4.0)
    assert v1 is not None and v2 is not None and (v1.version, v2.version) == (1, 2)
    assert await store.add_prompt_version("default", "missing", "t", None, {}, 5.0) is None
    latest = await store.get_prompt_version("default", "p1", None)
    assert (
        latest is not None and latest.template == "b {{input}}" and latest.model == "placeholder/x"
    )
    first = await store.get_prompt_version("default", "p1", 1)
    assert first is not None and first.parameters == {"size": "64x64"}
    assert await store.get_prompt_version("default", "p1", 9) is None
    assert [v.version for v in await store.list_prompt_versions("default", "p1")] == [1, 2]
    got = await store.get_prompt("default", "p1")
    assert got is not None and got.latest_version == 2 and got.name == "Poster"
    await store.create_prompt("default", "p0", None, None, 6.0)
    page = await store.list_prompts("default", None, 1)
    assert [p.id for p in page.items] == ["p0"] and page.next_cursor == "p0"
    page = await store.list_prompts("default", page.next_cursor, 1)
    assert [p.id for p in page.items] == ["p1"] and page.next_cursor is None


async def test_list_identities_pages_by_id(store: SqlStore) -> None:
    await store.write_batch([IdentityUpsert(f"id-{i}", float(i)) for i in range(5)])
    page = await store.list_identities("default", None, 2)
    assert [i.id for i in page.items] == ["id-0", "id-1"]
    page = await store.list_identities("default", page.next_cursor, 10)
    assert [i.id for i in page.items] == ["id-2", "id-3", "id-4"] and page.next_cursor is None


# --- strings the databases would refuse ------------------------------------------------------
BAD = "a\x00b\x07c\ud800d\t\n\re"  # NUL, BEL, a lone surrogate, then tab/LF/CR (kept)
CLEAN = "a\ufffdb\ufffdc\ufffdd\t\n\re"


async def test_nul_control_characters_and_surrogates_are_stored_as_replacement(
    store: SqlStore,
) -> None:
    trace = make_trace(
        name="a\x00b",
        error_message=BAD,
        requested_model=BAD,
        identity_id="u\x00",
        thread_id="t\x00",
        metadata={"k\x00": BAD, "\ud800": "v"},
        attempts=[{"error": BAD, "nested": [{"deep": "\x00"}]}],
        notes=[BAD],
        usage={"big": 2**70, "ok": 1},
    )
    await store.write_batch(
        [
            trace,
            IdentityUpsert(
                "u\x00",
                1.0,
                display_name=BAD,
                email=BAD,
                logo_url=BAD,
                metadata=[{"k\x00": BAD}],
                tags=[BAD],
            ),
            ThreadUpsert("t\x00", 1.0, [BAD]),
        ]
    )
    got = await store.get_trace("default", trace.id)
    assert got is not None
    assert got.name == "a\ufffdb" and got.error_message == CLEAN and got.requested_model == CLEAN
    assert got.metadata == {"k\ufffd": CLEAN, "\ufffd": "v"}
    assert got.attempts == [{"error": CLEAN, "nested": [{"deep": "\ufffd"}]}]
    assert got.notes == [CLEAN] and got.usage == {"big": str(2**70), "ok": 1}
    # looked up with the raw value, found under the stored one
    assert [
        t.id for t in (await store.list_traces("default", TraceQuery(name="a\x00b"))).items
    ] == [trace.id]
    assert [t.id for t in await store.thread_traces("default", "t\x00", 10)] == [trace.id]
    ident = await store.get_identity("default", "u\x00")
    assert ident is not None and ident.id == "u\ufffd"
    assert (ident.display_name, ident.email, ident.logo_url) == (CLEAN, CLEAN, CLEAN)
    assert ident.metadata == [{"k\ufffd": CLEAN}] and ident.tags == [CLEAN]
    thread = await store.get_thread("default", "t\x00")
    assert thread is not None and thread.tags == [CLEAN]
    await store.create_prompt("default", "p\x00", BAD, BAD, 1.0)
    version = await store.add_prompt_version("default", "p\x00", BAD, BAD, {"k": BAD}, 2.0)
    assert version is not None and version.template == CLEAN
    got_version = await store.get_prompt_version("default", "p\ufffd", None)
    assert got_version is not None and got_version.model == CLEAN
    assert got_version.parameters == {"k": CLEAN}


async def test_json_too_deep_for_orjson_is_kept_as_text(store: SqlStore) -> None:
    deep: object = "bottom"
    for _ in range(400):  # orjson refuses more than 255 levels
        deep = [deep]
    trace = make_trace(usage={"deep": deep}, metadata={"m": "v"})
    await store.write_batch([trace])
    got = await store.get_trace("default", trace.id)
    assert got is not None and got.metadata == {"m": "v"}
    assert got.usage is not None
    level = got.usage["deep"]
    depth = 1
    while isinstance(level, list):
        level, depth = level[0], depth + 1
    assert isinstance(level, str) and level.startswith("[[") and "bottom" in level
    assert depth < 100  # the deep part is a string, the top stays JSON


async def test_a_row_the_database_rejects_is_not_transient(store: SqlStore) -> None:
    """An out-of-range integer fails on its own data: an ordinary error, not StoreUnavailable."""
    with pytest.raises(Exception) as caught:
        await store.write_batch([make_trace(n=2**70)])
    assert not isinstance(caught.value, StoreUnavailable)
    with pytest.raises(Exception) as caught:
        await store.write_batch([make_trace(name=None)])  # NOT NULL
    assert not isinstance(caught.value, StoreUnavailable)
    assert await store.count_traces("default") == 0


# --- transient or permanent --------------------------------------------------------------------
@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.InvalidPasswordError("password rotated"),
        asyncpg.exceptions.InvalidAuthorizationSpecificationError("no such role"),
        asyncpg.exceptions.ReadOnlySQLTransactionError("read-only replica"),
        asyncpg.exceptions.AdminShutdownError("57P01"),
        asyncpg.exceptions.CannotConnectNowError("57P03"),
        asyncpg.exceptions.SerializationError("40001"),
        asyncpg.exceptions.DeadlockDetectedError("40P01"),
        asyncpg.exceptions.DiskFullError("53100"),
        asyncpg.exceptions.TooManyConnectionsError("53300"),
        asyncpg.exceptions.ConnectionDoesNotExistError("08003"),
        asyncpg.exceptions.InvalidCachedStatementError("0A000"),
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.exceptions.InterfaceError("connection is closed"),
    ],
)
def test_postgres_transient_errors(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.NotNullViolationError("23502"),
        asyncpg.exceptions.UniqueViolationError("23505"),
        asyncpg.exceptions.CharacterNotInRepertoireError("22021"),
        asyncpg.exceptions.NumericValueOutOfRangeError("22003"),
        asyncpg.exceptions.UndefinedColumnError("42703"),
        asyncpg.exceptions._base.DataError("client-side encoding"),
        asyncpg.exceptions.FeatureNotSupportedError("0A000 other"),
    ],
)
def test_postgres_permanent_errors(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_sqlite_transient_errors() -> None:
    assert _sqlite_transient(sqlite3.OperationalError("database is locked"))
    assert _sqlite_transient(sqlite3.OperationalError("database or disk is full"))
    assert _sqlite_transient(sqlite3.OperationalError("attempt to write a readonly database"))
    assert not _sqlite_transient(sqlite3.IntegrityError("NOT NULL constraint failed"))


async def test_real_postgres_refusals_that_are_transient() -> None:
    """A read-only server (a failover to a replica) and a refused role raise StoreUnavailable."""
    read_only = SqlStore(
        PostgresDriver(
            f"{PG_DSN}?default_transaction_read_only=on", schema=f"ig_ro_{uuid.uuid4().hex[:8]}"
        )
    )
    role = SqlStore(PostgresDriver(PG_DSN.replace("postgres@", "no_such_role_ig@")))
    for s in (read_only, role):
        with pytest.raises(StoreUnavailable):
            await s.write_batch([make_trace()])
        await s.close()


# --- layering: the store only persists ---------------------------------------------------------
SRC = Path(__file__).resolve().parent.parent / "src" / "imagegate"
# what store/ must never import: the edges, the pipeline, HTTP or CLI machinery
NOT_IN_STORE = (
    "imagegate.telemetry",
    "imagegate.api",
    "imagegate.cli",
    "imagegate.errors",
    "imagegate.gateway",
    "imagegate.control",
    "starlette",
    "argparse",
    "pydantic",
)
# what telemetry/ may import of the store: the package (protocol, records) and the text rule
STORE_SURFACE = {"imagegate.store", "imagegate.store.records", "imagegate.store.clean"}


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = "imagegate." + ".".join(path.relative_to(SRC).parent.parts)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
            else:
                base = []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_store_imports_no_edge_and_no_telemetry() -> None:
    found = {
        (path.name, name)
        for path in (SRC / "store").glob("*.py")
        for name in _imports(path)
        if name.startswith(NOT_IN_STORE)
    }
    assert found == set()


def test_telemetry_sees_only_the_stores_public_surface() -> None:
    found = {
        (path.name, name)
        for path in (SRC / "telemetry").glob("*.py")
        for name in _imports(path)
        if name.startswith("imagegate.store.")
        and name not in STORE_SURFACE
        and name.rpartition(".")[0] not in STORE_SURFACE
    }
    assert found == set()


def test_importing_the_store_loads_no_telemetry_and_no_edge() -> None:
    """No cycle hides behind a lazy import: a fresh interpreter importing the store pulls in
    neither telemetry nor the HTTP edge nor the CLI. (The config model names telemetry's
    settings section, a plain pydantic model with no behaviour: that one module is allowed.)"""
    code = (
        "import sys, imagegate.store; "
        "print(sorted(m for m in sys.modules if m.startswith("
        "('imagegate.telemetry', 'imagegate.api', 'imagegate.cli', 'starlette'))"
        " and m not in ('imagegate.telemetry', 'imagegate.telemetry.settings')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sql_store_is_a_store(tmp_path: Path) -> None:
    """``Store`` is what everything takes; mypy checks this assignment (and ``open_store``)."""
    store: Store = SqlStore(SqliteDriver(tmp_path / "imagegate.db"))
    assert isinstance(store, SqlStore)
