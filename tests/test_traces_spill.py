"""No trace is ever dropped: a real gateway on a throwaway PostgreSQL cluster that is stopped
and started under it, a byte budget small enough to spill to disk, a shutdown while the
database is down followed by a new gateway on the same data_dir, names holding NUL, and a row
the database rejects on its own data.

The cluster (initdb in a temp dir, own port) comes from ``test_traces_outage.Cluster``; each
test gets its own database in it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from live import GEN, LiveGateway, live_gateway
from test_traces_outage import Cluster, _pg_bin

from imagegate.config import Config
from imagegate.control import ControlPlane
from imagegate.gateway import Gateway
from imagegate.store import SqlStore, open_store
from imagegate.store.postgres import PostgresDriver
from imagegate.telemetry import spill
from imagegate.telemetry.trace import TraceRecord, new_trace_id
from imagegate.telemetry.writer import BatchingWriter

_databases = itertools.count()


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[Cluster]:
    bin_dir = _pg_bin()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("no PostgreSQL server binaries to run a private cluster")
    c = Cluster(bin_dir)
    try:
        c.init()
        c.start()
        yield c
    finally:
        c.remove()


@pytest.fixture
def pg(pg_cluster: Cluster) -> Cluster:
    """The module's cluster, running, with a fresh database; ``dsn`` points at it."""
    if not (pg_cluster.data / "postmaster.pid").exists():
        pg_cluster.start()
    name = f"t{next(_databases)}"

    async def create() -> None:
        conn = await asyncpg.connect(pg_cluster.dsn, timeout=5)
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    asyncio.run(create())
    pg_cluster.db = name  # type: ignore[attr-defined]
    return pg_cluster


def db_dsn(c: Cluster) -> str:
    return c.dsn.rsplit("/", 1)[0] + "/" + c.db  # type: ignore[attr-defined]


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def body(i: int) -> dict[str, Any]:
    return {
        "model": "placeholder/x",
        "prompt": f"p{i}",
        "size": "16x16",
        "identity": {"id": f"u{i % 7}", "display_name": f"User {i}"},
        "thread": {"id": f"t{i % 3}", "tags": [f"tag{i % 5}"]},
    }


def send(gw: LiveGateway, numbers: range, workers: int = 4) -> list[str]:
    """POST one generation per number, concurrently; every one must be answered 200."""

    def one(http: httpx.Client, i: int) -> str:
        r = http.post(GEN, json=body(i))
        assert r.status_code == 200, r.text
        return r.headers["x-orq-trace-id"]

    with httpx.Client(base_url=gw.url, timeout=30) as http, ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda i: one(http, i), numbers))


def all_trace_ids(gw: LiveGateway) -> set[str]:
    r = httpx.get(f"{gw.url}/v2/traces", params={"limit": 500}, timeout=30)
    return {t["id"] for t in r.json()["data"]} if r.status_code == 200 else set()


def count(dsn: str, sql: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def gateway_with_budget(config: Config, budget: int) -> Gateway:
    store = open_store(config)
    writer = BatchingWriter(
        store, data_dir=config.data_dir, max_buffer_bytes=budget, retry_max_s=0.2
    )
    return Gateway(config, control=ControlPlane(config, store=store, writer=writer))


def metric(text: str, name: str) -> float:
    (line,) = [x for x in text.splitlines() if x.startswith(name + " ")]
    return float(line.split()[1])


def test_500_requests_through_an_outage_with_a_small_budget_lose_nothing(
    make_config: Any, pg: Cluster
) -> None:
    config = make_config(database_url=db_dsn(pg))
    gateway = gateway_with_budget(config, budget=60_000)  # ~40 traces with their upserts
    writer = gateway.control.writer
    with live_gateway(config, gateway) as gw:
        ids = send(gw, range(100))
        pg.stop()
        ids += send(gw, range(100, 400))  # answered while the database is down
        wait_until(lambda: writer.spilled > 0 and writer.stats()["buffered_bytes"] <= 60_000)
        assert writer.dropped == 0 and not writer.available
        assert list((Path(config.data_dir) / "spill").glob("spill-*.jsonl"))
        pg.start()
        ids += send(gw, range(400, 500))
        wait_until(lambda: all_trace_ids(gw) == set(ids))
        wait_until(lambda: writer.pending == 0)
        text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert len(set(ids)) == 500
    assert metric(text, "imagegate_trace_writer_dropped_total") == 0
    assert metric(text, "imagegate_trace_writer_spilled_total") == writer.spilled > 0
    assert metric(text, "imagegate_trace_writer_replayed_total") == writer.replayed > 0
    assert metric(text, "imagegate_trace_writer_buffered_items") == 0
    assert "# TYPE imagegate_trace_writer_buffered_bytes gauge" in text
    assert metric(text, "imagegate_trace_writer_poison_total") == 0
    assert count(db_dsn(pg), "SELECT COUNT(*) FROM traces") == 500
    assert count(db_dsn(pg), "SELECT COUNT(*) FROM identities") == 7
    assert count(db_dsn(pg), "SELECT COUNT(*) FROM thread_tags") == 15
    assert list((Path(config.data_dir) / "spill").glob("spill-*")) == []


def test_closed_while_down_then_a_new_gateway_replays_the_spill_file(
    make_config: Any, pg: Cluster
) -> None:
    config = make_config(database_url=db_dsn(pg))
    spill_dir = Path(config.data_dir) / "spill"
    pg.stop()
    with live_gateway(config) as gw:
        ids = send(gw, range(50))
        first = gw.gateway.control.writer
    assert first.dropped == 0 and first.spilled == 150  # traces, identity and thread upserts
    assert list(spill_dir.glob("spill-*.jsonl"))
    pg.start()
    with live_gateway(config) as gw:
        wait_until(lambda: all_trace_ids(gw) == set(ids))
        second = gw.gateway.control.writer
        wait_until(lambda: second.pending == 0)
        assert second.replayed == 150
    assert list(spill_dir.glob("spill-*")) == []
    assert count(db_dsn(pg), "SELECT COUNT(*) FROM identities") == 7


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_name_with_nul_is_readable_over_http(
    make_config: Any, request: pytest.FixtureRequest, backend: str
) -> None:
    overrides = {}
    if backend == "postgresql":
        overrides["database_url"] = db_dsn(request.getfixturevalue("pg"))
    config = make_config(**overrides)
    with live_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        sent = {
            "model": "placeholder/x",
            "prompt": "p",
            "size": "16x16",
            "orq": {"name": "a\x00b"},
            "metadata": {"k\x00": "v\x00"},
        }
        r = http.post(GEN, json=sent)
        assert r.status_code == 200, r.text
        trace_id = r.headers["x-orq-trace-id"]
        got = http.get(f"/v2/traces/{trace_id}")
        assert got.status_code == 200, got.text
        assert got.json()["name"] == "a\ufffdb"
        assert got.json()["metadata"] == {"k\ufffd": "v\ufffd"}
        listed = http.get("/v2/traces", params={"name": "a\ufffdb"}).json()["data"]
        assert [t["id"] for t in listed] == [trace_id]
        assert gw.gateway.control.writer.dropped == 0


async def test_a_row_postgresql_rejects_goes_to_the_poison_file(
    tmp_path: Path, pg: Cluster
) -> None:
    store = SqlStore(PostgresDriver(db_dsn(pg)))
    writer = BatchingWriter(store, data_dir=tmp_path)
    await writer.start()
    good = TraceRecord(id=new_trace_id(), operation="generations", name="ok")
    bad = TraceRecord(id=new_trace_id(), operation="generations", name="bad", n=2**40)
    writer.submit(good)
    writer.submit(bad)  # n is an INTEGER column: out of range for PostgreSQL
    assert await writer.flush(10.0)
    assert (
        await store.get_trace("default", good.id) is not None
        and await store.get_trace("default", bad.id) is None
    )
    lines = (tmp_path / "spill" / spill.POISON_FILE).read_text().splitlines()
    (poison,) = [json.loads(line) for line in lines]
    assert poison["v"]["id"] == bad.id and poison["v"]["n"] == 2**40
    assert "out of int32 range" in poison["error"]
    assert writer.poisoned == 1 and writer.dropped == 0
    await writer.close()
    await store.close()
