"""The console's queries (store/browse.py) on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from databases import PG_DSN

from imagegate.store import IdentityUpsert, SqlStore, ThreadUpsert, TraceRecord
from imagegate.store.browse import LATENCY_BUCKETS_MS, Totals, TraceFilter
from imagegate.store.postgres import PostgresDriver
from imagegate.store.sqlite import SqliteDriver
from imagegate.telemetry.trace import new_trace_id

DAY = 86_400.0
T0 = 1_780_000_000.0 // DAY * DAY  # a UTC midnight


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


def trace(i: int, **fields: Any) -> TraceRecord:
    base: dict[str, Any] = {
        "id": new_trace_id(),
        "operation": "generations",
        "name": "images.generations",
        "started_at": T0 + i,
        "status": 200,
        "n": 1,
        "duration_ms": 100.0,
        "requested_model": "placeholder/sketch",
        "served_model": "placeholder/sketch",
        "prompt": f"prompt {i}",
        "workspace_id": "ws",
    }
    base.update(fields)
    return TraceRecord(**base)


async def test_keyset_pages_cover_every_trace_once_newest_first(store: SqlStore) -> None:
    items = [trace(i) for i in range(23)]
    await store.write_batch([*items, trace(99, workspace_id="other")])
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await store.browse_traces("ws", TraceFilter(limit=5, cursor=cursor))
        seen += [t.id for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted((t.id for t in items), reverse=True)


async def test_filters(store: SqlStore) -> None:
    rows = [
        trace(1, prompt="A Red Fox in 100% snow_storm", identity_id="ada", thread_id="th"),
        trace(
            2,
            prompt="a blue whale",
            status=502,
            error_code="provider_error",
            served_model=None,
            requested_model="openai/dall-e-3",
        ),
        trace(3, served_model="b/m2", requested_model="a/m1", cache="hit", prompt_id="p1"),
        trace(4, prompt="a red fox again", status=429, started_at=T0 + DAY),
        trace(5, prompt="the 100x snow", identity_id="bob"),
    ]
    await store.write_batch(rows)

    async def ids(**kw: Any) -> list[str]:
        page = await store.browse_traces("ws", TraceFilter(**kw))
        return sorted(t.id for t in page.items)

    def of(*idx: int) -> list[str]:
        return sorted(rows[i - 1].id for i in idx)

    assert await ids(text="red fox") == of(1, 4)  # any case
    assert await ids(text="100%") == of(1)  # % is literal
    assert await ids(text="x_s") == []  # _ is literal ("100x snow" would match a wildcard)
    assert await ids(text="snow_") == of(1)
    assert await ids(succeeded=True) == of(1, 3, 5)
    assert await ids(succeeded=False) == of(2, 4)
    assert await ids(status=429) == of(4)
    assert await ids(provider="openai") == of(2)  # not served: the model asked
    assert await ids(provider="b") == of(3)
    assert await ids(model="a/m1") == of(3)
    assert await ids(cache="hit") == of(3)
    assert await ids(prompt_id="p1") == of(3)
    assert await ids(identity_id="ada", thread_id="th") == of(1)
    assert await ids(since=T0 + DAY) == of(4)
    assert await ids(until=T0 + 3) == of(1, 2)
    assert await store.trace_image("ws", rows[0].id, 0) is None
    assert await store.trace_image("other", rows[0].id, 0) is None


async def test_identity_and_thread_totals(store: SqlStore) -> None:
    await store.write_batch(
        [
            IdentityUpsert("ada", T0, workspace_id="ws"),
            IdentityUpsert("bob", T0, workspace_id="ws"),
            ThreadUpsert("t1", T0, workspace_id="ws"),
            ThreadUpsert("t2", T0 + 50, workspace_id="ws"),
            ThreadUpsert("t3", T0 + 50, workspace_id="ws"),
            trace(1, identity_id="ada", n=2, cost_usd=0.5, thread_id="t1"),
            trace(2, identity_id="ada", status=500, cost_usd=None, thread_id="t1"),
            trace(3, identity_id="bob", cost_usd=0.25, thread_id="t2"),
            trace(4, identity_id="ada", workspace_id="other", cost_usd=9.0),
        ]
    )
    totals = await store.identity_totals_many("ws", ["ada", "bob", "nobody"])
    assert set(totals) == {"ada", "bob"}
    ada = totals["ada"]
    assert (ada.requests, ada.images, ada.cost_usd, ada.errors) == (2, 2, 0.5, 1)
    assert ada.last_at == T0 + 2
    threads, cursor = await store.list_threads("ws", None, 2)
    assert [t.id for t in threads] == ["t3", "t2"] and cursor == (T0 + 50, "t2")
    threads, cursor = await store.list_threads("ws", cursor, 2)
    assert [t.id for t in threads] == ["t1"] and cursor is None
    assert await store.thread_counts("ws", ["t1", "t2", "t3"]) == {"t1": 2, "t2": 1}


async def test_usage_per_day_and_model_with_percentiles(store: SqlStore) -> None:
    day0 = [trace(i, duration_ms=float(10 * (i + 1))) for i in range(10)]  # 10..100 ms
    day1 = [
        trace(int(DAY) + 1, status=502, served_model=None, duration_ms=2500.0),
        trace(int(DAY) + 2, cache="hit", cost_usd=0.0, duration_ms=None),
        trace(
            int(DAY) + 3,
            cache="miss",
            cost_usd=0.04,
            n=3,
            requested_model="o/x",
            served_model="o/x",
            duration_ms=40.0,
        ),
    ]
    await store.write_batch([*day0, *day1, trace(5, workspace_id="other")])
    by_day = await store.usage_by("ws", "day", T0, T0 + 2 * DAY)
    first, second = int(T0 // DAY), int(T0 // DAY) + 1
    assert set(by_day) == {first, second}
    d0, d1 = by_day[first], by_day[second]
    assert (d0.requests, d0.images, d0.errors) == (10, 10, 0)
    assert sum(d0.latency) == 10
    p50 = d0.percentile(0.5)
    assert p50 is not None and 30 <= p50 <= 75  # the true median is 55 ms
    p95 = d0.percentile(0.95)
    assert p95 is not None and 75 <= p95 <= 150  # exact to the bucket (100-150 ms)
    assert (d1.requests, d1.images, d1.errors, d1.cache_hits, d1.cache_asked) == (3, 4, 1, 1, 2)
    assert d1.cost_usd == pytest.approx(0.04)
    assert d1.error_rate == pytest.approx(1 / 3) and d1.cache_hit_rate == 0.5
    by_model = await store.usage_by("ws", "model", T0, T0 + 2 * DAY)
    assert by_model["placeholder/sketch"].requests == 12 and by_model["o/x"].images == 3
    assert await store.usage_by("ws", "day", T0 + 5 * DAY, T0 + 6 * DAY) == {}


def test_percentile_from_buckets() -> None:
    t = Totals(latency=[0] * (len(LATENCY_BUCKETS_MS) + 1))
    assert t.percentile(0.5) is None
    t.latency[-1] = 4  # everything past the last bound
    assert t.percentile(0.5) == LATENCY_BUCKETS_MS[-1]
