"""Three real ``imagegate serve`` replicas sharing one Redis, one PostgreSQL and one
S3-compatible blob store (moto's server), all pointed at one fake OpenAI.

The PostgreSQL is a private cluster (``pgcluster.py``) so it can be restarted under load; the
fake holds its answers until the test opens its gate (``gated.py``), so "a slow upstream" is
one the test has not released yet. Proved here: a URL signed by one replica is served by the
others; PostgreSQL restarted during the load loses no trace; SIGTERM to a replica with 50
requests in flight on it closes its listener at once (new connections go to the others), lets
all 50 finish, exits 0 within the grace, and its traces are readable from another replica.
The replicas are module-wide: the SIGTERM test, which ends one, runs last.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import boto3
import httpx
import pytest
from fleetkit import Replica, write_config
from gated import GatedOpenAI
from moto.server import ThreadedMotoServer
from pgcluster import Cluster, missing_tooling, pg_bin_dir
from waiting import wait_until

GRACE_S = 90  # shutdown_grace_s: the drain test's 50 calls finish well within it
REDIS_URL = "redis://127.0.0.1:6379/0"


class Fleet:
    def __init__(self, replicas: list[Replica], cluster: Cluster, fake: GatedOpenAI) -> None:
        self.replicas = replicas
        self.cluster = cluster
        self.fake = fake

    def trace_ids_in_db(self, ids: list[str]) -> set[str]:
        async def read() -> set[str]:
            conn = await asyncpg.connect(self.cluster.dsn, timeout=10)
            try:
                rows = await conn.fetch("SELECT id FROM traces WHERE id = ANY($1::text[])", ids)
                return {row["id"] for row in rows}
            finally:
                await conn.close()

        return asyncio.run(read())


@pytest.fixture(scope="module")
def fake() -> Iterator[GatedOpenAI]:
    with GatedOpenAI() as server:
        server.release()
        yield server
        server.release()
        assert server.violations == []


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    bucket = f"imagegate-fleet-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    try:
        yield {
            "backend": "s3",
            "bucket": bucket,
            "endpoint_url": url,
            "access_key_id": "testing",
            "secret_access_key": "testing",
        }
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    fake: GatedOpenAI,
    cluster: Cluster,
    s3: dict[str, Any],
) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("fleet")
    run = uuid.uuid4().hex[:10]
    shared = {
        "database_url": cluster.dsn,
        "redis_url": REDIS_URL,
        "storage": s3,
        "signing_key": "fleet-signing-key-0123456789abcdef",
        "providers": fake.providers(),
        "cache": {"backend": "redis", "redis_url": REDIS_URL, "prefix": f"igtest:{run}:c:"},
        "idempotency": {"prefix": f"igtest:{run}:i:"},
        "lifecycle": {"shutdown_grace_s": GRACE_S},
    }
    configs = [
        write_config(tmp / f"replica-{i}.yaml", {**shared, "data_dir": str(tmp / f"data-{i}")})
        for i in range(3)
    ]
    replicas = [Replica(config, tmp) for config in configs]
    try:
        yield Fleet([r.wait_up() for r in replicas], cluster, fake)
    finally:
        for replica in replicas:
            replica.stop()


def body(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "openai/gpt-image-1", "prompt": prompt, **extra}


def test_a_url_signed_by_one_replica_is_served_by_the_others(fleet: Fleet) -> None:
    a, b, c = fleet.replicas
    signed = a.post(body("a signed lighthouse", response_format="url"))
    assert signed.status_code == 200, signed.text
    url = httpx.URL(signed.json()["data"][0]["url"])
    assert url.port == a.port and url.params["sig"]
    from_a = httpx.get(str(url), timeout=30)
    assert from_a.status_code == 200 and from_a.content.startswith(b"\x89PNG")
    for other in (b, c):
        served = httpx.get(str(url.copy_with(port=other.port)), timeout=30)
        assert served.status_code == 200, served.text
        assert served.content == from_a.content
        forged = url.copy_merge_params({"sig": "0" * len(url.params["sig"])})
        assert httpx.get(str(forged.copy_with(port=other.port)), timeout=30).status_code != 200


def test_postgresql_restarted_under_load_loses_no_trace(fleet: Fleet) -> None:
    """Requests spread over the three replicas before, during and after a PostgreSQL
    restart: every one is answered, and every trace reaches the database."""
    turn = itertools.cycle(fleet.replicas)
    ids: list[str] = []

    def phase(name: str, count: int) -> None:
        with ThreadPoolExecutor(6) as pool:
            calls = [pool.submit(next(turn).post, body(f"{name} {i}")) for i in range(count)]
            answers = [call.result(timeout=120) for call in calls]
        assert [a.status_code for a in answers] == [200] * count, [a.text for a in answers]
        ids.extend(a.headers["x-orq-trace-id"] for a in answers)

    phase("before", 15)
    wait_until(lambda: len(fleet.trace_ids_in_db(ids)) == len(ids), "traces written")
    fleet.cluster.stop()
    try:
        phase("during", 30)
        for replica in fleet.replicas:  # the store is down and every replica knows it
            ready = httpx.get(f"{replica.url}/health/ready", timeout=30)
            assert ready.status_code == 503 and ready.json()["checks"]["store"]["ok"] is False
    finally:
        fleet.cluster.start()
    phase("after", 15)
    wait_until(
        lambda: len(fleet.trace_ids_in_db(ids)) == len(ids),
        "every trace written",
        timeout_s=120,
        every_s=0.2,
    )
    assert len(set(ids)) == 60


def test_sigterm_drains_one_replica_while_the_others_serve(fleet: Fleet) -> None:
    a, b, c = fleet.replicas
    fake = fleet.fake
    fake.hold()
    base = fake.arrived
    with ThreadPoolExecutor(60) as pool:
        on_a = [pool.submit(a.post, body(f"drain {i}")) for i in range(50)]
        wait_until(lambda: fake.arrived == base + 50, "50 calls in flight on A", timeout_s=60)
        a.signal(signal.SIGTERM)
        wait_until(a.refuses, "A's listener closed", timeout_s=30)
        assert a.proc.poll() is None  # still finishing its 50
        elsewhere = [pool.submit(r.post, body(f"elsewhere {i}")) for i, r in enumerate((b, c))]
        wait_until(lambda: fake.arrived == base + 52, "B and C took new calls", timeout_s=60)
        fake.release()
        answers = [call.result(timeout=120) for call in on_a]
        others = [call.result(timeout=120) for call in elsewhere]
    assert a.proc.wait(timeout=GRACE_S) == 0, a.log.read_text()
    assert [r.status_code for r in answers] == [200] * 50, [r.text for r in answers]
    assert [r.status_code for r in others] == [200, 200]
    ids = [r.headers["x-orq-trace-id"] for r in answers]
    for trace_id in ids:  # A is gone: B reads what A wrote
        trace = httpx.get(f"{b.url}/v2/traces/{trace_id}", timeout=30)
        assert trace.status_code == 200, trace.text
        assert trace.json()["status"] == 200
    assert all(httpx.get(f"{r.url}/health/ready", timeout=30).status_code == 200 for r in (b, c))
