"""Workspaces in the store: per-workspace ids, managed keys, usage and spend, the upgrade from
schema 1, the prompt cache, spill lines and the operator CLI (SQLite and real PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from databases import schema_version

from imagegate.cli import main
from imagegate.config import load_config
from imagegate.control import ControlPlane, PromptCache
from imagegate.keyring import pepper
from imagegate.models import RoutingOptions
from imagegate.request import ImageRequest
from imagegate.store import (
    Conflict,
    IdentityUpsert,
    InvalidRecord,
    SqlStore,
    ThreadUpsert,
    TraceQuery,
    open_store,
)
from imagegate.store import sql as sql_module
from imagegate.store.migrations import MIGRATIONS
from imagegate.store.postgres import PostgresDriver
from imagegate.store.sqlite import SqliteDriver
from imagegate.telemetry import spill
from imagegate.telemetry.trace import TraceRecord, new_trace_id
from imagegate.workspaces import (
    ApiKeyRecord,
    Budget,
    RateLimits,
    Workspace,
    key_hash,
    managed_key_id,
    new_key,
)

PG_DSN = os.environ.get("IMAGEGATE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
A, B = "team-a", "team-b"


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def _driver(kind: str, tmp_path: Path, schema: str) -> SqliteDriver | PostgresDriver:
    if kind == "sqlite":
        return SqliteDriver(tmp_path / "imagegate.db")
    return PostgresDriver(PG_DSN, schema=schema)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    schema = f"ig_test_{uuid.uuid4().hex[:12]}"
    s = SqlStore(_driver(request.param, tmp_path, schema))
    await s.connect()
    try:
        yield s
    finally:
        await s.close()
        if request.param == "postgresql":
            await _drop_schema(schema)


def trace(workspace: str, **fields: Any) -> TraceRecord:
    return TraceRecord(
        new_trace_id(), "generations", "images.generations", workspace_id=workspace, **fields
    )


def key_record(workspace: str, name: str = "ci", **fields: Any) -> tuple[str, ApiKeyRecord]:
    key = new_key()
    digest = key_hash(key, b"pepper")
    return key, ApiKeyRecord(
        id=managed_key_id(digest),
        workspace_id=workspace,
        name=name,
        role="member",
        prefix=key[:14],
        hash=digest,
        created_at=fields.pop("created_at", 10.0),
        **fields,
    )


# --- one id, two workspaces ------------------------------------------------------------------
async def test_the_same_ids_in_two_workspaces_are_different_rows(store: SqlStore) -> None:
    ta = trace(A, identity_id="alice", thread_id="t1", status=200, n=1, cost_usd=0.5)
    tb = trace(B, identity_id="alice", thread_id="t1", status=200, n=3, cost_usd=2.0)
    await store.write_batch(
        [
            IdentityUpsert("alice", 1.0, display_name="Alice A", workspace_id=A),
            IdentityUpsert("alice", 2.0, display_name="Alice B", workspace_id=B),  # same batch
            IdentityUpsert("alice", 3.0, email="a@a.example", workspace_id=A),
            ThreadUpsert("t1", 1.0, ["a-tag"], workspace_id=A),
            ThreadUpsert("t1", 5.0, ["b-tag"], workspace_id=B),
            ta,
            tb,
        ]
    )
    alice_a, alice_b = await store.get_identity(A, "alice"), await store.get_identity(B, "alice")
    assert alice_a is not None and alice_b is not None
    assert (alice_a.display_name, alice_a.email, alice_a.last_seen_at) == (
        "Alice A",
        "a@a.example",
        3.0,
    )
    assert (alice_b.display_name, alice_b.email, alice_b.last_seen_at) == ("Alice B", None, 2.0)
    assert await store.get_identity("default", "alice") is None
    assert (await store.identity_totals(A, "alice")).images == 1
    assert (await store.identity_totals(B, "alice")).cost_usd == pytest.approx(2.0)
    assert [i.id for i in (await store.list_identities(A, None, 10)).items] == ["alice"]
    assert (await store.list_identities("default", None, 10)).items == []

    thread_a, thread_b = await store.get_thread(A, "t1"), await store.get_thread(B, "t1")
    assert thread_a is not None and thread_b is not None
    assert (thread_a.tags, thread_a.last_seen_at) == (["a-tag"], 1.0)
    assert (thread_b.tags, thread_b.first_seen_at) == (["b-tag"], 5.0)
    assert [t.id for t in await store.thread_traces(A, "t1", 10)] == [ta.id]

    assert await store.get_trace(A, ta.id) == ta and await store.get_trace(B, ta.id) is None
    assert [t.id for t in (await store.list_traces(B, TraceQuery())).items] == [tb.id]
    assert [t.id for t in (await store.list_traces(A, TraceQuery(identity_id="alice"))).items] == [
        ta.id
    ]
    assert (await store.count_traces(A), await store.count_traces("default")) == (1, 0)


async def test_prompts_are_per_workspace(store: SqlStore) -> None:
    await store.create_prompt(A, "p", "in A", None, 1.0)
    await store.create_prompt(B, "p", "in B", None, 1.0)  # no conflict across workspaces
    with pytest.raises(Conflict):
        await store.create_prompt(A, "p", None, None, 2.0)
    await store.add_prompt_version(A, "p", "A {{input}}", None, {}, 2.0)
    await store.add_prompt_version(A, "p", "A2 {{input}}", None, {}, 3.0)
    await store.add_prompt_version(B, "p", "B {{input}}", None, {}, 2.0)
    assert await store.add_prompt_version("default", "p", "x", None, {}, 4.0) is None
    latest_a = await store.get_prompt_version(A, "p", None)
    latest_b = await store.get_prompt_version(B, "p", None)
    assert latest_a is not None and (latest_a.version, latest_a.template) == (2, "A2 {{input}}")
    assert latest_b is not None and (latest_b.version, latest_b.template) == (1, "B {{input}}")
    assert await store.get_prompt_version(B, "p", 2) is None
    assert [v.version for v in await store.list_prompt_versions(A, "p")] == [1, 2]
    got = await store.get_prompt(B, "p")
    assert got is not None and got.name == "in B" and got.latest_version == 1
    assert await store.get_prompt("default", "p") is None
    assert [p.id for p in (await store.list_prompts(A, None, 10)).items] == ["p"]
    assert (await store.list_prompts("default", None, 10)).items == []


async def test_workspace_ids_are_cleaned_like_every_other_string(store: SqlStore) -> None:
    """A workspace id with a NUL is stored with U+FFFD and found again by the raw value."""
    odd = "w\x00"
    record = trace(odd)
    await store.write_batch(
        [
            record,
            IdentityUpsert("u", 1.0, workspace_id=odd),
            ThreadUpsert("t", 1.0, ["x"], workspace_id=odd),
        ]
    )
    got = await store.get_trace(odd, record.id)
    assert got is not None and got.workspace_id == "w\ufffd"
    assert await store.get_identity(odd, "u") is not None
    assert await store.get_thread("w\ufffd", "t") is not None
    await store.create_prompt(odd, "p", None, None, 1.0)
    assert await store.add_prompt_version(odd, "p", "t", None, {}, 1.0) is not None
    assert await store.get_prompt_version("w\ufffd", "p", 1) is not None


# --- workspaces and keys -----------------------------------------------------------------------
async def test_workspaces_create_ensure_update_list(store: SqlStore) -> None:
    default = await store.get_workspace("default")
    assert default is not None and default.allow_unpriced and default.budget is None
    ws = Workspace(
        A,
        name="Team A",
        key_limits=RateLimits(rpm=60, images_per_min=20),
        identity_limits=RateLimits(concurrent=2),
        budget=Budget(500.0, "month"),
        key_budget=Budget(50.0, "day"),
        identity_budget=None,
        allow_unpriced=False,
        created_at=5.0,
    )
    assert await store.create_workspace(ws) == ws
    with pytest.raises(Conflict):
        await store.create_workspace(ws)
    with pytest.raises(InvalidRecord):
        await store.create_workspace(Workspace("Not Valid"))
    assert await store.ensure_workspace(A, 99.0) == ws  # kept as it was
    fresh = await store.ensure_workspace(B, 7.0)
    assert fresh == Workspace(B, created_at=7.0)
    assert [w.id for w in await store.list_workspaces()] == ["default", A, B]
    changed = await store.update_workspace(
        Workspace(A, name="A!", budget=Budget(1.0), created_at=0)
    )
    assert changed is not None and changed.name == "A!" and changed.budget == Budget(1.0, "month")
    assert changed.key_limits == RateLimits() and changed.created_at == 5.0
    assert await store.update_workspace(Workspace("nope")) is None
    assert await store.get_workspace("nope") is None


async def test_keys_create_find_list_revoke(store: SqlStore) -> None:
    _, k1 = key_record(A, "ci", limits=RateLimits(rpm=5), budget=Budget(50.0))
    _, k2 = key_record(A, "web", created_at=11.0)
    _, k3 = key_record(B, "other")
    for k in (k1, k2, k3):
        assert await store.create_key(k) == k
    with pytest.raises(Conflict):
        await store.create_key(k1)
    with pytest.raises(Conflict):  # another id, the same hash
        await store.create_key(replace(k1, id="key_0000000000000000"))
    assert await store.get_key_by_hash(k1.hash) == k1
    assert await store.get_key_by_hash("0" * 64) is None
    assert await store.get_key(k3.id) == k3 and await store.get_key("key_nope") is None
    assert [k.id for k in await store.list_keys(A)] == [k1.id, k2.id]
    assert {k.id for k in await store.list_keys(None)} == {k1.id, k2.id, k3.id}
    assert await store.list_keys("default") == []
    revoked = await store.revoke_key(k1.id, 20.0)
    assert revoked is not None and revoked.revoked and revoked.revoked_at == 20.0
    again = await store.revoke_key(k1.id, 30.0)
    assert again is not None and again.revoked_at == 20.0  # the first time is kept
    found = await store.get_key_by_hash(k1.hash)
    assert found is not None and found.revoked_at == 20.0  # still found: the caller refuses it
    assert await store.revoke_key("key_nope", 1.0) is None


# --- usage and spend -----------------------------------------------------------------------
async def test_usage_and_spend_sum_one_workspace(store: SqlStore) -> None:
    await store.write_batch(
        [
            trace(
                A,
                api_key_id="k1",
                identity_id="u1",
                served_model="m/x",
                status=200,
                n=2,
                cost_usd=0.25,
                started_at=100.0,
            ),
            trace(
                A,
                api_key_id="k1",
                identity_id="u2",
                requested_model="m/y",
                status=200,
                n=1,
                cost_usd=None,
                started_at=110.0,
            ),
            trace(
                A,
                api_key_id="k1",
                identity_id="u1",
                requested_model="m/x",
                status=502,
                n=4,
                started_at=120.0,
            ),
            trace(
                A,
                api_key_id="k2",
                identity_id="u1",
                served_model="m/x",
                status=200,
                n=1,
                cost_usd=0.0,
                cache="hit",
                started_at=130.0,
            ),
            trace(
                A,
                api_key_id=None,
                served_model="m/z",
                status=200,
                n=1,
                cost_usd=1.5,
                started_at=200.0,
            ),
            trace(
                B,
                api_key_id="k1",
                identity_id="u1",
                served_model="m/x",
                status=200,
                n=9,
                cost_usd=100.0,
                started_at=100.0,
            ),
        ]
    )
    by_key = {u.group: u for u in await store.usage(A, "key", None, None)}
    assert set(by_key) == {"k1", "k2", None}
    k1 = by_key["k1"]
    assert (k1.requests, k1.images, k1.unpriced, k1.errors, k1.cache_hits) == (3, 3, 1, 1, 0)
    assert k1.cost_usd == pytest.approx(0.25)
    assert (by_key["k2"].cache_hits, by_key["k2"].cost_usd) == (1, 0.0)
    by_model = {u.group: u for u in await store.usage(A, "model", None, 150.0)}
    assert {g: u.requests for g, u in by_model.items()} == {"m/x": 3, "m/y": 1}
    by_identity = await store.usage(A, "identity", 105.0, None)
    assert [(u.group, u.requests) for u in by_identity] == [(None, 1), ("u1", 2), ("u2", 1)]
    assert await store.usage("default", "key", None, None) == []

    assert await store.spend(A, 0.0) == pytest.approx(1.75)
    assert await store.spend(A, 150.0) == pytest.approx(1.5)
    assert await store.spend(A, 0.0, key_id="k1") == pytest.approx(0.25)
    assert await store.spend(A, 0.0, identity_id="u1") == pytest.approx(0.25)
    assert await store.spend(A, 0.0, key_id="k2", identity_id="u1") == 0.0
    assert await store.spend(B, 0.0, key_id="k1") == pytest.approx(100.0)
    assert await store.spend("default", 0.0) == 0.0


# --- the upgrade from schema 1 ---------------------------------------------------------------
V1_ROWS = [
    "INSERT INTO identities VALUES ('alice', 'Alice', NULL, NULL, NULL, '[\"t\"]', 1, 2, 3)",
    "INSERT INTO threads VALUES ('th', 1, 5)",
    "INSERT INTO thread_tags VALUES ('th', 'x')",
    "INSERT INTO prompts VALUES ('p', 'Poster', NULL, 1, 1, 2)",
    "INSERT INTO prompt_versions VALUES ('p', 1, 'a {{input}}', NULL, '{}', 2)",
    "INSERT INTO traces (id, name, operation, started_at, status, identity_id, thread_id, n,"
    " cost_usd, attempts, skipped, output_blobs, metadata, notes) VALUES"
    " ('01J00000000000000000000000', 'old', 'generations', 50, 200, 'alice', 'th', 2, 0.5,"
    " '[]', '[]', '[]', '{}', '[]')",
]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_schema_1_rows_are_readable_in_default_after_upgrade(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = f"ig_up_{uuid.uuid4().hex[:12]}"
    old = SqlStore(_driver(kind, tmp_path, schema))
    monkeypatch.setattr(sql_module, "MIGRATIONS", MIGRATIONS[:1])
    try:
        await old.connect()
        async with old.driver.transaction() as conn:
            for statement in V1_ROWS:
                await conn.execute(statement)
        assert await schema_version(old) == 1
        await old.close()
        monkeypatch.setattr(sql_module, "MIGRATIONS", MIGRATIONS)
        new = SqlStore(_driver(kind, tmp_path, schema))
        try:
            await _check_upgraded(new)
        finally:
            await new.close()
    finally:
        await old.close()
        if kind == "postgresql":
            await _drop_schema(schema)


async def _check_upgraded(store: SqlStore) -> None:
    assert await schema_version(store) == MIGRATIONS[-1][0]  # every migration applied
    ident = await store.get_identity("default", "alice")
    assert ident is not None and (ident.display_name, ident.tags, ident.last_seen_at) == (
        "Alice",
        ["t"],
        3.0,
    )
    thread = await store.get_thread("default", "th")
    assert thread is not None and thread.tags == ["x"] and thread.last_seen_at == 5.0
    prompt = await store.get_prompt("default", "p")
    assert prompt is not None and prompt.name == "Poster" and prompt.latest_version == 1
    version = await store.get_prompt_version("default", "p", None)
    assert version is not None and version.template == "a {{input}}"
    old = await store.get_trace("default", "01J00000000000000000000000")
    assert old is not None and old.name == "old" and old.workspace_id == "default"
    assert [t.id for t in await store.thread_traces("default", "th", 10)] == [old.id]
    assert (await store.identity_totals("default", "alice")).images == 2
    assert await store.spend("default", 0.0) == pytest.approx(0.5)
    assert await store.get_workspace("default") is not None
    # the new keys are in place: the same ids in another workspace are new rows
    await store.write_batch(
        [
            IdentityUpsert("alice", 9.0, workspace_id=A),
            ThreadUpsert("th", 9.0, ["y"], workspace_id=A),
        ]
    )
    await store.add_prompt_version("default", "p", "b", None, {}, 9.0)
    thread = await store.get_thread("default", "th")
    assert thread is not None and thread.tags == ["x"]
    assert (await store.list_identities(A, None, 10)).items[0].last_seen_at == 9.0


# --- the prompt cache and the pipeline step ----------------------------------------------------
class _Writer:
    def __init__(self) -> None:
        self.ops: list[Any] = []

    def submit_op(self, item: Any) -> None:
        self.ops.append(item)


async def test_prompt_cache_and_apply_use_the_traces_workspace(
    store: SqlStore, make_config: Any
) -> None:
    await store.create_prompt(A, "p", None, None, 1.0)
    await store.add_prompt_version(A, "p", "A: {{input}}", None, {}, 1.0)
    await store.create_prompt(B, "p", None, None, 1.0)
    await store.add_prompt_version(B, "p", "B: {{input}}", None, {}, 1.0)
    cache = PromptCache(store, ttl_s=3600)
    got_a, got_b = await cache.get(A, "p", None), await cache.get(B, "p", None)
    assert got_a is not None and got_a.template == "A: {{input}}"
    assert got_b is not None and got_b.template == "B: {{input}}"
    assert await cache.get("default", "p", None) is None
    await store.add_prompt_version(B, "p", "B2: {{input}}", None, {}, 2.0)
    cache.invalidate(A, "p")  # only A's entries go
    again_b = await cache.get(B, "p", None)
    assert again_b is not None and again_b.template == "B: {{input}}"
    cache.invalidate(B, "p")
    again_b = await cache.get(B, "p", None)
    assert again_b is not None and again_b.template == "B2: {{input}}"

    writer = _Writer()
    control = ControlPlane(make_config(), store=store, writer=writer)  # type: ignore[arg-type]
    options = RoutingOptions.model_validate(
        {
            "identity": {"id": "alice"},
            "thread": {"id": "t", "tags": ["x"]},
            "prompt": {"id": "p", "version": "latest"},
        }
    )
    request = ImageRequest("generations", "placeholder/x", prompt="fox", options=options)
    record = trace(B)
    await control.apply(request, record)
    assert request.prompt == "B2: fox" and record.prompt_version == 2
    assert [(type(op).__name__, op.workspace_id) for op in writer.ops] == [
        ("IdentityUpsert", B),
        ("ThreadUpsert", B),
    ]


# --- spill lines -------------------------------------------------------------------------------
def test_spill_lines_keep_the_workspace_and_old_lines_decode_to_default() -> None:
    record = trace(A, identity_id="alice")
    for item in (
        record,
        IdentityUpsert("alice", 1.0, workspace_id=A),
        ThreadUpsert("t", 1.0, ["x"], workspace_id=A),
    ):
        assert spill.decode(spill.encode(item)) == item
    old = orjson.loads(spill.encode(record))
    del old["v"]["workspace_id"]
    decoded = spill.decode(orjson.dumps(old))
    assert decoded.workspace_id == "default" and decoded.id == record.id
    old_ident = spill.decode(b'{"t": "identity", "v": {"id": "u", "seen_at": 1.0}}')
    assert old_ident == IdentityUpsert("u", 1.0)


# --- the CLI -----------------------------------------------------------------------------------
@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in list(os.environ):
        if name.startswith("IMAGEGATE_"):
            monkeypatch.delenv(name)
    path = tmp_path / "imagegate.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\n")
    yield str(path)


def _store_call(config_file: str, work: Any) -> Any:
    async def run() -> Any:
        store = open_store(load_config(config_file))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def test_cli_keys_create_list_revoke(config_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "keys",
        "create",
        "--config",
        config_file,
        "--workspace",
        A,
        "--name",
        "ci",
        "--rpm",
        "60",
        "--images-per-min",
        "20",
        "--concurrent",
        "4",
        "--budget-usd",
        "50/month",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    key = out.rstrip("\n").splitlines()[-1]
    assert key.startswith("ig_live_") and len(key) == 48
    assert sum(key in line for line in out.splitlines()) == 1  # shown once, alone, last
    digest = key_hash(key, pepper(load_config(config_file)))
    stored = _store_call(config_file, lambda s: s.get_key_by_hash(digest))
    assert stored is not None and stored.workspace_id == A and stored.name == "ci"
    assert stored.limits == RateLimits(60, 20, 4) and stored.budget == Budget(50.0, "month")
    assert stored.id == managed_key_id(digest) and stored.role == "member"
    assert _store_call(config_file, lambda s: s.get_workspace(A)) is not None  # ensured

    assert main(["keys", "list", "--config", config_file]) == 0
    listed = capsys.readouterr().out
    assert stored.id in listed and key[:14] + "\u2026" in listed
    assert key not in listed and digest not in listed
    assert main(["keys", "--config", config_file, "list", "--workspace", A, "--json"]) == 0
    listed = capsys.readouterr().out
    (view,) = orjson.loads(listed)
    assert view["id"] == stored.id and view["prefix"] == key[:14] + "\u2026"
    assert key not in listed and digest not in listed and view["limits"]["rpm"] == 60

    assert main(["keys", "revoke", stored.id, "--config", config_file]) == 0
    capsys.readouterr()
    revoked = _store_call(config_file, lambda s: s.get_key(stored.id))
    assert revoked is not None and revoked.revoked
    assert main(["keys", "revoke", "key_nope", "--config", config_file]) == 1
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "create", "--workspace", "Bad Id", "--name", "x"],
        ["keys", "create", "--name", "x", "--budget-usd", "lots"],
        ["keys", "create", "--name", "x", "--rpm", "-1"],
        ["workspaces", "create", "UPPER"],
        ["workspaces", "create", "ok", "--identity-budget-usd", "5/week"],
        ["usage", "--from", "yesterday"],
        ["traces", "--workspace", "no/slash"],
        ["prompts", "list", "--workspace", ""],
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    argv: list[str], config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--config", config_file]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1


def test_cli_workspaces_usage_and_prompts_per_workspace(
    config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "workspaces",
        "create",
        A,
        "--config",
        config_file,
        "--name",
        "Team A",
        "--rpm",
        "60",
        "--identity-images-per-min",
        "5",
        "--budget-usd",
        "500/month",
        "--key-budget-usd",
        "5/day",
        "--no-unpriced",
    ]
    assert main(argv) == 0
    made = orjson.loads(capsys.readouterr().out)
    assert made["key_limits"]["rpm"] == 60 and made["identity_limits"]["images_per_min"] == 5
    assert made["budget"] == {"usd": 500.0, "period": "month"} and made["allow_unpriced"] is False
    assert main(argv) == 1 and "already exists" in capsys.readouterr().err
    assert main(["workspaces", "list", "--config", config_file, "--json"]) == 0
    assert [w["id"] for w in orjson.loads(capsys.readouterr().out)] == ["default", A]

    _store_call(
        config_file,
        lambda s: s.write_batch(
            [
                trace(
                    A,
                    api_key_id="k1",
                    served_model="m/x",
                    status=200,
                    n=2,
                    cost_usd=0.5,
                    started_at=1_700_000_000.0,
                ),
                trace(
                    A, api_key_id="k1", served_model="m/x", status=500, started_at=1_700_000_001.0
                ),
                trace(
                    "default", api_key_id="k1", served_model="m/x", status=200, n=1, cost_usd=9.0
                ),
            ]
        ),
    )
    assert (
        main(
            [
                "usage",
                "--config",
                config_file,
                "--workspace",
                A,
                "--group-by",
                "model",
                "--from",
                "2023-11-14T22:13:20Z",
                "--json",
            ]
        )
        == 0
    )
    (row,) = orjson.loads(capsys.readouterr().out)
    assert row == {
        "group": "m/x",
        "requests": 2,
        "images": 2,
        "cost_usd": 0.5,
        "unpriced": 0,
        "errors": 1,
        "cache_hits": 0,
    }
    assert main(["usage", "--config", config_file, "--workspace", A]) == 0
    assert "k1" in capsys.readouterr().out
    assert main(["traces", "--config", config_file, "--workspace", A, "--json"]) == 0
    assert {t["workspace_id"] for t in orjson.loads(capsys.readouterr().out)} == {A}

    create = [
        "prompts",
        "create",
        "--config",
        config_file,
        "--id",
        "p",
        "--template",
        "a {{input}}",
    ]
    assert main([*create, "--workspace", A]) == 0
    assert main(create) == 0  # the same id in default: no conflict
    capsys.readouterr()
    assert (
        main(
            [
                "prompts",
                "--workspace",
                A,
                "add-version",
                "p",
                "--template",
                "b {{input}}",
                "--config",
                config_file,
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["prompts", "show", "p", "--workspace", A, "--config", config_file]) == 0
    assert orjson.loads(capsys.readouterr().out)["latest_version"] == 2
    assert main(["prompts", "show", "p", "--config", config_file]) == 0
    assert orjson.loads(capsys.readouterr().out)["latest_version"] == 1
    assert main(["prompts", "show", "p", "--workspace", B, "--config", config_file]) == 1
