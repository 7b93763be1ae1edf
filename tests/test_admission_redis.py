"""The Redis backend of admission: shared by processes, one round trip per operation, keys that
expire, and a dead Redis that admits (fail open) instead of failing requests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from live import free_port

from imagegate.admission import Admission, BudgetCheck, RateCheck, RateLimitExceeded
from imagegate.admission.redis import RedisBackend
from imagegate.workspaces import Budget, RateLimits

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC

WORKER = """
import asyncio, sys
from imagegate.admission import Admission, RateCheck, RateLimitExceeded
from imagegate.admission.redis import RedisBackend
from imagegate.workspaces import RateLimits

async def main(url: str, prefix: str, now: float) -> None:
    adm = Admission(RedisBackend(url, prefix=prefix, timeout_s=5.0), clock=lambda: now)
    check = [RateCheck("key", "ws:key:shared", RateLimits(rpm=10))]
    passed = 0
    for _ in range(15):
        try:
            ticket = await adm.admit(check, 1, 60)
        except RateLimitExceeded:
            continue
        await ticket.release()
        passed += 1
    print(passed, adm.fail_open)
    await adm.close()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


@pytest.fixture
def prefix() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    name = f"imagegate:test:{uuid.uuid4().hex}:"
    try:
        yield name
    finally:
        keys = list(client.scan_iter(match=name + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
async def adm(prefix: str) -> AsyncIterator[Admission]:
    admission = Admission(RedisBackend(REDIS_URL, prefix=prefix, timeout_s=2.0), clock=lambda: T0)
    yield admission
    await admission.close()


def test_two_processes_share_one_limit(prefix: str, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), REDIS_URL, prefix, str(T0)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60)[0].split() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert [out[1] for out in outputs] == ["0", "0"]  # no fail-open: Redis decided every one
    assert sum(int(out[0]) for out in outputs) == 10


class CountingEvalsha:
    """Counts the round trips the backend makes (every script call is one EVALSHA)."""

    def __init__(self, backend: RedisBackend) -> None:
        self.calls = 0
        self._inner = backend.client.evalsha
        backend.client.evalsha = self  # type: ignore[method-assign]

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self._inner(*args)


async def test_one_round_trip_per_operation(adm: Admission) -> None:
    assert isinstance(adm.backend, RedisBackend)
    rates = [
        RateCheck("key", "ws:key:k", RateLimits(rpm=10, images_per_min=40, concurrent=4)),
        RateCheck("identity", "ws:identity:i", RateLimits(rpm=5, concurrent=2)),
    ]

    async def seed(since: float) -> float:
        return 0.0

    budgets = [
        BudgetCheck("ws", "ws:ws", Budget(1.0), seed),
        BudgetCheck("key", "ws:key:k", Budget(1.0, "day"), seed),
    ]
    await (await adm.admit(rates, 4, 60)).release()  # loads the scripts if Redis lacks them
    await adm.reserve(budgets, 0.1, allow_unpriced=True)  # first use: ask, seed, reserve
    counter = CountingEvalsha(adm.backend)
    ticket = await adm.admit(rates, 4, 60)
    assert counter.calls == 1
    await ticket.release()
    assert counter.calls == 2
    reservation = await adm.reserve(budgets, 0.1, allow_unpriced=True)
    assert counter.calls == 3
    await reservation.settle(0.05)
    assert counter.calls == 4


async def test_keys_expire_with_their_state(adm: Admission, prefix: str) -> None:
    rates = [RateCheck("key", "ws:key:k", RateLimits(rpm=10, images_per_min=20, concurrent=2))]
    await adm.admit(rates, 4, lease_s=30)

    async def seed(since: float) -> float:
        return 0.0

    day = BudgetCheck("day", "ws:ws", Budget(1.0, "day"), seed)
    await adm.reserve([day], 0.5, allow_unpriced=True)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        ttl = {
            key.decode().removeprefix(prefix): client.pttl(key)
            for key in client.scan_iter(match=prefix + "*")
        }
    finally:
        client.close()
    # GCRA state: until it is back to full (+1 s margin); slots: the lease; budget: window + 2 h
    assert 6_000 < ttl["r:ws:key:k"] <= 7_000
    assert 12_000 < ttl["i:ws:key:k"] <= 13_000
    assert 30_000 < ttl["c:ws:key:k"] <= 31_000
    day_left_ms = (1_700_006_400 - T0) * 1000  # to 2023-11-15 00:00 UTC
    assert day_left_ms < ttl["b:ws:ws:1699920000"] <= day_left_ms + 2 * 3600 * 1000
    assert len(ttl) == 4


async def test_unreachable_redis_fails_open_and_counts() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    mono = [0.0]
    backend = RedisBackend(url, timeout_s=0.5, retry_after_s=1.0, monotonic=lambda: mono[0])
    adm = Admission(backend, clock=lambda: T0)
    rates = [RateCheck("key", "ws:key:k", RateLimits(rpm=1, concurrent=1))]
    try:
        tickets = [await adm.admit(rates, 1, 60) for _ in range(3)]  # rpm=1, yet all pass
        assert all(t.headers == {} for t in tickets)
        await tickets[0].release()

        async def seed(since: float) -> float:
            return 0.0

        reservation = await adm.reserve(
            [BudgetCheck("b", "ws:ws", Budget(0.0), seed)], 1.0, allow_unpriced=True
        )
        await reservation.settle(1.0)
        assert adm.fail_open == 4
        assert adm.redis_errors == 1  # then Redis is left alone for retry_after_s
        assert adm.stats()["fail_open"] == 4 and adm.stats()["redis_errors"] == 1
        with pytest.raises(RateLimitExceeded):  # what needs no Redis is still refused
            await adm.admit([RateCheck("key", "ws:key:k", RateLimits(images_per_min=1))], 2, 60)
        mono[0] = 1.0  # the back-off is over: Redis is tried again
        assert (await adm.admit(rates, 1, 60)).headers == {}
        assert (adm.fail_open, adm.redis_errors) == (5, 2)
    finally:
        await adm.close()


async def test_redis_failing_mid_way_fails_open(adm: Admission) -> None:
    assert isinstance(adm.backend, RedisBackend)

    async def broken(*args: Any) -> Any:
        raise redis.exceptions.ConnectionError("reset by peer")

    adm.backend.client.evalsha = broken  # type: ignore[method-assign]
    ticket = await adm.admit([RateCheck("key", "ws:key:k", RateLimits(rpm=1))], 1, 60)
    assert ticket.headers == {} and adm.fail_open == 1 and adm.redis_errors == 1
