"""PostgreSQL stopped during a burst: every request is answered while it is down and every
trace reaches the database once it is back.

The test runs in phases, each waiting on a condition rather than a clock: requests before the
outage (written), the database stopped, requests while it is down (answered; the writer must
have failed to write, and dropped nothing), the database started, requests after it, then all
traces in the database. The cluster is a private one (``pgcluster.py``); the shared
PostgreSQL is never touched. Missing server binaries fail the test: ``make test`` needs them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import httpx
import pytest
from live import GEN, live_gateway
from pgcluster import Cluster, missing_tooling, pg_bin_dir
from waiting import wait_until

_pg_bin = pg_bin_dir  # the name test_traces_spill imports

__all__ = ["Cluster", "_pg_bin"]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    why = missing_tooling()
    if why is not None:
        pytest.fail(why)
    bin_dir = pg_bin_dir()
    assert bin_dir is not None
    c = Cluster(bin_dir)
    try:
        c.init()
        c.start()
        yield c
    finally:
        c.remove()


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


def count(cluster: Cluster, table: str) -> int:
    return asyncio.run(_count(cluster.dsn, f"SELECT COUNT(*) FROM {table}"))


def test_traces_survive_a_database_outage(make_config: Any, cluster: Cluster) -> None:
    per_phase, workers = 42, 4
    config = make_config(database_url=cluster.dsn)
    numbers = itertools.count()

    with live_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        writer = gw.gateway.control.writer

        def one(i: int) -> int:
            body = {
                "model": "placeholder/a",
                "prompt": f"p{i}",
                "size": "16x16",
                "identity": {"id": f"u{i % 7}", "display_name": f"User {i}"},
                "thread": {"id": f"t{i % 3}", "tags": [f"tag{i % 5}"]},
            }
            return http.post(GEN, json=body).status_code

        def burst() -> list[int]:
            """``per_phase`` requests from ``workers`` threads; every status."""
            batch = [next(numbers) for _ in range(per_phase)]
            with ThreadPoolExecutor(workers) as pool:
                return list(pool.map(one, batch))

        assert burst() == [200] * per_phase
        wait_until(lambda: count(cluster, "traces") == per_phase, "traces written", every_s=0.1)

        cluster.stop()
        # Answered while the database is down (the client's 30 s timeout guards a hang):
        # the database is not on the request's path.
        assert burst() == [200] * per_phase
        wait_until(lambda: writer.failures > 0, "the writer failed against the stopped database")
        assert writer.dropped == 0  # the traces wait in the buffer, none is lost

        cluster.start()
        assert burst() == [200] * per_phase
        total = 3 * per_phase
        wait_until(lambda: count(cluster, "traces") == total, "all traces written", every_s=0.1)
        assert writer.dropped == 0
        assert count(cluster, "identities") == 7
        assert count(cluster, "thread_tags") == 15
        r = http.get("/v2/traces", params={"limit": 500})
        assert r.status_code == 200 and len(r.json()["data"]) == total
