"""Coalescing across replicas: three real ``imagegate serve`` processes, one upstream call.

The replicas share one Redis (the cache, under a prefix fresh per test), one PostgreSQL
schema (traces) and one S3 bucket (a moto server in this process: a follower reads the
leader's images from it). The fake OpenAI holds every answer until the test opens its gate
(``gated.py``), so "a call in flight" is simply one not released yet; nothing here sleeps.
"""

from __future__ import annotations

import concurrent.futures
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import redis
from databases import fresh_schema
from fakes.openai import Reply
from fleetkit import Replica, write_config
from gated import GatedOpenAI, metric
from live import GEN, free_port, live_gateway
from moto.server import ThreadedMotoServer
from waiting import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"
PER_REPLICA = 10


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def fake() -> Iterator[GatedOpenAI]:
    with GatedOpenAI() as server:
        yield server
        server.release()  # nothing left waiting on the gate at shutdown
        assert server.violations == []


@pytest.fixture
def fleet(tmp_path: Path, fake: GatedOpenAI, moto_url: str) -> Iterator[list[Replica]]:
    prefix = f"igtest:cache:{uuid.uuid4().hex[:12]}:"
    bucket = f"imagegate-{uuid.uuid4().hex[:12]}"
    s3 = {"region": "us-east-1", "access_key_id": "testing", "secret_access_key": "testing"}
    boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=s3["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    with fresh_schema() as database_url:
        config = write_config(
            tmp_path / "imagegate.yaml",
            {
                "data_dir": str(tmp_path / "data"),
                "database_url": database_url,
                "signing_key": "coalesce-fleet-signing-key-0123456789",
                "providers": fake.providers(),
                "redis_url": REDIS_URL,
                "cache": {
                    "backend": "redis",
                    "redis_url": REDIS_URL,
                    "prefix": prefix,
                    "flight_lease_s": 2,
                    "flight_poll_s": 0.1,
                },
                "storage": {"backend": "s3", "bucket": bucket, "endpoint_url": moto_url, **s3},
            },
        )
        replicas = [Replica(config, tmp_path) for _ in range(3)]  # they start together
        try:
            for replica in replicas:
                replica.wait_up()
            yield replicas
        finally:
            for replica in replicas:
                replica.stop()
            client = redis.Redis.from_url(REDIS_URL)
            for name in client.scan_iter(f"{prefix}*"):
                client.delete(name)
            client.close()


def body(prompt: str) -> dict[str, Any]:
    return {
        "model": "openai/gpt-image-1",
        "prompt": prompt,
        "response_format": "b64_json",
        "orq": {"cache": {"type": "exact_match", "ttl": 600}},
    }


def send(url: str, prompt: str) -> httpx.Response:
    return httpx.post(f"{url}{GEN}", json=body(prompt), timeout=120)


def spread(
    pool: concurrent.futures.Executor, replicas: list[Replica], prompt: str
) -> list[tuple[int, concurrent.futures.Future[httpx.Response]]]:
    """``PER_REPLICA`` identical requests on each replica, all at once."""
    return [
        (i, pool.submit(send, replica.url, prompt))
        for _ in range(PER_REPLICA)
        for i, replica in enumerate(replicas)
    ]


def all_waiting(replicas: list[Replica]) -> bool:
    """Every request is on its replica's one flight, and every flight but one waits."""
    waiters = [metric(r.url, "imagegate_cache_inflight_waiters") for r in replicas]
    leading = [metric(r.url, "imagegate_cache_flights_leading") for r in replicas]
    following = [metric(r.url, "imagegate_cache_flights_waiting") for r in replicas]
    return waiters == [PER_REPLICA] * len(replicas) and sum(leading) == 1 and sum(following) == 2


def image_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) == 1
    return str(data[0]["b64_json"])


def test_thirty_requests_on_three_replicas_make_one_upstream_call(
    fleet: list[Replica], fake: GatedOpenAI
) -> None:
    with concurrent.futures.ThreadPoolExecutor(3 * PER_REPLICA) as pool:
        sent = spread(pool, fleet, "one call for the whole fleet")
        wait_until(lambda: all_waiting(fleet), "30 requests on three flights, one leading")
        assert fake.arrived == 1
        fake.release()
        responses = [future.result() for _, future in sent]
    images = {image_of(r) for r in responses}
    assert len(images) == 1 and fake.arrived == len(fake.requests) == 1
    caches = sorted(r.headers["x-orq-cache"] for r in responses)
    assert caches == ["HIT"] * 29 + ["MISS"]
    assert (
        sum(metric(r.url, 'imagegate_cache_flights_total{outcome="followed"}') for r in fleet) == 2
    )
    # the answer is cached for the fleet: a later request anywhere makes no call
    assert image_of(send(fleet[2].url, "one call for the whole fleet")) in images
    assert fake.arrived == 1


def test_a_leader_killed_mid_call_is_replaced_by_exactly_one_follower(
    fleet: list[Replica], fake: GatedOpenAI
) -> None:
    with concurrent.futures.ThreadPoolExecutor(3 * PER_REPLICA) as pool:
        sent = spread(pool, fleet, "the leader dies")
        wait_until(lambda: all_waiting(fleet), "30 requests on three flights, one leading")
        assert fake.arrived == 1
        leader = next(
            i for i, r in enumerate(fleet) if metric(r.url, "imagegate_cache_flights_leading") == 1
        )
        fleet[leader].signal(signal.SIGKILL)
        fleet[leader].proc.wait(timeout=30)
        survivors = [r for i, r in enumerate(fleet) if i != leader]
        # its lease lapses; one survivor takes over and calls, the other keeps waiting
        wait_until(lambda: fake.arrived == 2, "a follower's call after the lease lapsed")
        fake.release()
        answered = [future.result() for i, future in sent if i != leader]
        for i, future in sent:
            if i == leader:
                with pytest.raises(httpx.TransportError):
                    future.result()
    assert len(answered) == 2 * PER_REPLICA
    assert len({image_of(r) for r in answered}) == 1
    assert fake.arrived == 2
    took_over = [
        metric(r.url, 'imagegate_cache_flights_total{outcome="took_over"}') for r in survivors
    ]
    assert sorted(took_over) == [0, 1]


# --- two gateways in this process stand for two replicas (each its own cache layer) --------
def two_gateways(make_config: Any, fake: GatedOpenAI, redis_url: str) -> list[Any]:
    prefix = f"igtest:cache:{uuid.uuid4().hex[:12]}:"
    config = make_config(
        providers=fake.providers(),
        cache={
            "backend": "redis",
            "redis_url": redis_url,
            "prefix": prefix,
            "flight_poll_s": 0.05,
        },
    )
    return [live_gateway(config), live_gateway(config)]


def test_a_failed_leader_frees_the_key_and_one_follower_calls(
    make_config: Any, fake: GatedOpenAI
) -> None:
    fake.script(
        Reply(400, body={"error": {"message": "bad luck", "code": "invalid"}}), key="gpt-image-1"
    )
    first, second = two_gateways(make_config, fake, REDIS_URL)
    with first as a, second as b, concurrent.futures.ThreadPoolExecutor(2) as pool:
        on_a = pool.submit(send, a.url, "a failing leader")
        wait_until(lambda: fake.arrived == 1, "A's call upstream")
        on_b = pool.submit(send, b.url, "a failing leader")
        wait_until(lambda: metric(b.url, "imagegate_cache_flights_waiting") == 1, "B waits")
        fake.release()
        ra, rb = on_a.result(), on_b.result()
        took_over = metric(b.url, 'imagegate_cache_flights_total{outcome="took_over"}')
    assert ra.status_code == 400  # the leader's own answer; not cached, not shared
    assert rb.status_code == 200 and rb.headers["x-orq-cache"] == "MISS"
    assert took_over == 1 and fake.arrived == 2


def test_with_redis_down_each_replica_calls_on_its_own_and_counts_it(
    make_config: Any, fake: GatedOpenAI
) -> None:
    fake.release()
    first, second = two_gateways(make_config, fake, f"redis://127.0.0.1:{free_port()}/0")
    with first as a, second as b:
        for gw in (a, b):
            assert send(gw.url, "no redis").status_code == 200
            assert metric(gw.url, 'imagegate_cache_flights_total{outcome="fail_open"}') == 1
    assert fake.arrived == 2
