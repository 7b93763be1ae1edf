"""Admission (rate limits and budgets) on both backends, with an injected clock: every window
and refill is decided by the test's time, never the wall clock's."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis

from imagegate.admission import (
    Admission,
    BudgetCheck,
    BudgetExceeded,
    RateCheck,
    RateLimitExceeded,
    Ticket,
)
from imagegate.admission.limits import MAX_KEY_CHARS, bounded_key
from imagegate.admission.local import LocalBackend
from imagegate.admission.redis import RedisBackend
from imagegate.telemetry.metrics import Metrics, render
from imagegate.workspaces import Budget, RateLimits

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def redis_up() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def drop_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["local", "redis"])
async def adm(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[Admission]:
    """The same tests against in-process counters and against the real Redis."""
    if request.param == "local":
        yield Admission(LocalBackend(), clock=clock)
        return
    if not redis_up():
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"imagegate:test:{uuid.uuid4().hex}:"
    admission = Admission(RedisBackend(REDIS_URL, prefix=prefix, timeout_s=2.0), clock=clock)
    try:
        yield admission
        assert admission.fail_open == 0 and admission.redis_errors == 0
    finally:
        await admission.close()
        drop_prefix(prefix)


def key(limits: RateLimits, name: str = "ws:key:k1") -> RateCheck:
    return RateCheck("key", name, limits)


def ident(limits: RateLimits, name: str = "ws:identity:alice") -> RateCheck:
    return RateCheck("identity", name, limits)


async def admitted(adm: Admission, rates: list[RateCheck], count: int, images: int = 1) -> int:
    """How many of ``count`` admits pass (each released at once)."""
    passed = 0
    for _ in range(count):
        try:
            ticket = await adm.admit(rates, images, 60)
        except RateLimitExceeded:
            continue
        await ticket.release()
        passed += 1
    return passed


async def refusal(adm: Admission, rates: list[RateCheck], images: int = 1) -> RateLimitExceeded:
    with pytest.raises(RateLimitExceeded) as info:
        await adm.admit(rates, images, 60)
    return info.value


# --- requests per minute -------------------------------------------------------------------------


async def test_exactly_n_per_minute_then_retry_after_one_interval(adm: Admission) -> None:
    rates = [key(RateLimits(rpm=10))]
    for left in range(9, -1, -1):
        ticket = await adm.admit(rates, 1, 60)
        assert ticket.headers["x-ratelimit-limit-requests"] == "10"
        assert ticket.headers["x-ratelimit-remaining-requests"] == str(left)
    assert ticket.headers["x-ratelimit-reset-requests"] == "60s"
    err = await refusal(adm, rates)
    assert (err.kind, err.which, err.retry_after_s) == ("key", "requests", 6.0)
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    assert not err.impossible
    assert adm.rate_limited == 1


async def test_refill_one_per_interval_and_all_after_a_minute(adm: Admission, clock: Clock) -> None:
    rates = [key(RateLimits(rpm=10))]
    assert await admitted(adm, rates, 10) == 10
    clock.advance(5.999)
    assert (await refusal(adm, rates)).retry_after_s == pytest.approx(0.001)
    clock.advance(0.001)
    assert await admitted(adm, rates, 3) == 1
    clock.advance(60)
    assert await admitted(adm, rates, 12) == 10


async def test_no_double_burst_at_a_minute_boundary(adm: Admission, clock: Clock) -> None:
    """A fixed window would pass 10 at 59.9 s and 10 more at 60.1 s; GCRA passes what refilled
    in those 0.2 s: nothing."""
    rates = [key(RateLimits(rpm=10))]
    clock.now = T0 - T0 % 60 + 59.9
    assert await admitted(adm, rates, 10) == 10
    clock.advance(0.2)
    assert await admitted(adm, rates, 10) == 0
    # Sustained: one try every 0.5 s for 10 minutes → exactly the rate, 100.
    times = [clock.now - 0.2] * 10
    for _ in range(1200):
        clock.advance(0.5)
        times += [clock.now] * await admitted(adm, rates, 1)
    assert len(times) == 10 + 100
    # Any 60 s span: at most the burst and the refill (2N - 1), never 2N.
    assert max(sum(t <= u < t + 60 for u in times) for t in times) == 19


async def test_refused_request_consumes_nothing(adm: Admission, clock: Clock) -> None:
    rates = [key(RateLimits(rpm=2))]
    assert await admitted(adm, rates, 2) == 2
    for _ in range(50):
        await refusal(adm, rates)
    clock.advance(30)  # one interval: exactly one back, however many were refused
    assert await admitted(adm, rates, 3) == 1


# --- images per minute ---------------------------------------------------------------------------


async def test_images_count_n_units(adm: Admission, clock: Clock) -> None:
    rates = [key(RateLimits(images_per_min=10))]
    ticket = await adm.admit(rates, 4, 60)
    assert ticket.headers == {
        "x-ratelimit-limit-images": "10",
        "x-ratelimit-remaining-images": "6",
        "x-ratelimit-reset-images": "24s",
    }
    await adm.admit(rates, 4, 60)
    err = await refusal(adm, rates, images=4)
    assert (err.which, err.retry_after_s) == ("images", 12.0)
    assert err.headers["x-ratelimit-remaining-images"] == "2"
    assert await admitted(adm, rates, 1, images=2) == 1
    clock.advance(6)
    assert await admitted(adm, rates, 2, images=1) == 1


async def test_more_images_than_the_limit_can_never_pass(adm: Admission) -> None:
    rates = [key(RateLimits(images_per_min=3))]
    err = await refusal(adm, rates, images=4)
    assert err.impossible and err.which == "images" and err.retry_after_s == 60.0
    assert "never" in str(err) and "4 images" in str(err)
    assert await admitted(adm, rates, 1, images=3) == 1  # the refusal consumed nothing


async def test_zero_images_take_a_request_but_no_image(adm: Admission) -> None:
    rates = [key(RateLimits(rpm=5, images_per_min=1))]
    ticket = await adm.admit(rates, 0, 60)
    assert ticket.headers["x-ratelimit-remaining-images"] == "1"
    assert ticket.headers["x-ratelimit-remaining-requests"] == "4"


# --- concurrency ---------------------------------------------------------------------------------


async def test_concurrency_slots_release_and_idempotent_release(adm: Admission) -> None:
    rates = [key(RateLimits(concurrent=2))]
    first = await adm.admit(rates, 1, 60)
    second = await adm.admit(rates, 1, 60)
    assert first.headers == {}  # concurrency has no header
    err = await refusal(adm, rates)
    assert (err.which, err.retry_after_s) == ("concurrent", 1.0)
    await first.release()
    third = await adm.admit(rates, 1, 60)
    await first.release()  # again: must not free the slot of another ticket
    await refusal(adm, rates)
    await second.release()
    await third.release()
    assert await admitted(adm, rates, 2) == 2


async def test_a_lost_ticket_frees_its_slot_when_the_lease_ends(
    adm: Admission, clock: Clock
) -> None:
    rates = [key(RateLimits(concurrent=1))]
    await adm.admit(rates, 1, lease_s=30)  # never released: a crashed replica
    clock.advance(29.999)
    await refusal(adm, rates)
    clock.advance(0.001)
    ticket = await adm.admit(rates, 1, lease_s=30)
    await ticket.release()


# --- several checks: atomic, headers ----------------------------------------------------------


async def test_all_checks_consume_or_none(adm: Admission) -> None:
    """The identity refuses after the key passed: the key keeps its units, and its slot."""
    k = key(RateLimits(rpm=10, images_per_min=20, concurrent=1))
    ticket = await adm.admit([k, ident(RateLimits(rpm=1))], 2, 60)
    await ticket.release()
    for _ in range(5):
        err = await refusal(adm, [k, ident(RateLimits(rpm=1, concurrent=5))], images=2)
        assert (err.kind, err.which) == ("identity", "requests")
    ticket = await adm.admit([k, ident(RateLimits(rpm=5), "ws:identity:bob")], 2, 60)
    assert ticket.headers["x-ratelimit-remaining-requests"] == "4"  # bob's: 5 - 1
    assert ticket.headers["x-ratelimit-remaining-images"] == "16"  # the key's: 20 - 2 - 2
    await refusal(adm, [k])  # bob's request holds the key's one slot
    await ticket.release()
    ticket = await adm.admit([k], 0, 60)
    assert ticket.headers["x-ratelimit-remaining-requests"] == "7"  # 10 - 3: no refusal counted


async def test_headers_show_the_tightest_check(adm: Admission) -> None:
    rates = [key(RateLimits(rpm=100, images_per_min=5)), ident(RateLimits(rpm=3))]
    ticket = await adm.admit(rates, 1, 60)
    assert ticket.headers["x-ratelimit-limit-requests"] == "3"  # the identity's
    assert ticket.headers["x-ratelimit-remaining-requests"] == "2"
    assert ticket.headers["x-ratelimit-limit-images"] == "5"  # only the key limits images
    assert ticket.headers["x-ratelimit-reset-requests"] == "20s"


async def test_no_limits_no_headers_and_a_free_ticket(adm: Admission) -> None:
    ticket = await adm.admit([key(RateLimits()), ident(RateLimits())], 4, 60)
    assert isinstance(ticket, Ticket) and ticket.headers == {}
    await ticket.release()
    assert (await adm.admit([], 1, 60)).headers == {}


async def test_long_keys_are_bounded_and_distinct(adm: Admission) -> None:
    a, b = "ws:identity:" + "a" * 500, "ws:identity:" + "a" * 499 + "b"
    assert len(bounded_key(a)) == MAX_KEY_CHARS and bounded_key(a) != bounded_key(b)
    assert await admitted(adm, [ident(RateLimits(rpm=1), a)], 2) == 1
    assert await admitted(adm, [ident(RateLimits(rpm=1), b)], 2) == 1


async def test_bounds_on_what_one_call_may_ask(adm: Admission) -> None:
    with pytest.raises(ValueError):
        await adm.admit([key(RateLimits(rpm=1), f"k{i}") for i in range(9)], 1, 60)
    with pytest.raises(ValueError):
        await adm.admit([key(RateLimits(rpm=1)), key(RateLimits(rpm=2))], 1, 60)
    with pytest.raises(ValueError):
        await adm.admit([key(RateLimits(rpm=1))], -1, 60)
    err = await refusal(adm, [key(RateLimits(concurrent=0))])
    assert err.impossible and err.which == "concurrent"


# --- budgets -------------------------------------------------------------------------------------


class Seed:
    """A trace store's spend: counts calls, yields once so concurrent callers overlap."""

    def __init__(self, spent: float = 0.0) -> None:
        self.spent = spent
        self.calls: list[float] = []

    async def __call__(self, since: float) -> float:
        self.calls.append(since)
        await asyncio.sleep(0)
        return self.spent


def budget(usd: float, seed: Seed, period: str = "month", name: str = "ws:ws") -> BudgetCheck:
    return BudgetCheck(f"budget {name}", name, Budget(usd, period), seed)  # type: ignore[arg-type]


async def try_reserve(adm: Admission, budgets: list[BudgetCheck], usd: float | None) -> bool:
    try:
        await adm.reserve(budgets, usd, allow_unpriced=True)
    except BudgetExceeded:
        return False
    return True


async def test_32_parallel_reservations_of_4_cents_fit_5_in_20_cents(adm: Admission) -> None:
    seed = Seed()
    b = budget(0.20, seed)
    results = await asyncio.gather(*(try_reserve(adm, [b], 0.04) for _ in range(32)))
    assert sum(results) == 5
    month_start = dt.datetime(2023, 11, 1, tzinfo=dt.UTC).timestamp()
    assert seed.calls == [month_start]  # one seed for 32 callers
    assert adm.budget_refused == 27


async def test_refusal_names_the_budget_and_waits_for_its_window(
    adm: Admission, clock: Clock
) -> None:
    b = budget(0.05, Seed(), "day", "team-a:key:k1")
    await adm.reserve([b], 0.05, allow_unpriced=True)
    with pytest.raises(BudgetExceeded) as info:
        await adm.reserve([b], 0.01, allow_unpriced=True)
    assert info.value.name == "budget team-a:key:k1"
    day_end = dt.datetime(2023, 11, 15, tzinfo=dt.UTC).timestamp()
    assert info.value.retry_after_s == pytest.approx(day_end - clock.now)


async def test_settle_replaces_the_reservation_once(adm: Admission) -> None:
    b = budget(0.20, Seed())
    reservations = [await adm.reserve([b], 0.04, allow_unpriced=True) for _ in range(5)]
    assert not await try_reserve(adm, [b], 0.01)
    await reservations[0].settle(0.01)  # 0.17 used
    await reservations[0].settle(0.0)  # idempotent: no second change
    await reservations[1].settle(None)  # failed: cost nothing → 0.13
    assert await try_reserve(adm, [b], 0.07)
    assert not await try_reserve(adm, [b], 0.000001)
    await reservations[2].settle(0.05)  # cost more than reserved: 0.21 used
    assert not await try_reserve(adm, [b], 0.0)
    assert await try_reserve(adm, [b], None) is False  # unpriced needs something left


async def test_seed_counts_earlier_spend_and_runs_once_per_window(
    adm: Admission, clock: Clock
) -> None:
    clock.now = dt.datetime(2023, 11, 14, 23, 59, 59, tzinfo=dt.UTC).timestamp()
    seed = Seed(spent=0.18)
    b = budget(0.20, seed, "day")
    assert not await try_reserve(adm, [b], 0.04)
    assert await try_reserve(adm, [b], 0.02)
    assert not await try_reserve(adm, [b], 0.01)
    assert len(seed.calls) == 1
    clock.advance(1)  # the next day: a new window, a new seed
    seed.spent = 0.0
    assert sum([await try_reserve(adm, [b], 0.04) for _ in range(6)]) == 5
    assert seed.calls == [
        dt.datetime(2023, 11, 14, tzinfo=dt.UTC).timestamp(),
        dt.datetime(2023, 11, 15, tzinfo=dt.UTC).timestamp(),
    ]


async def test_settle_after_rollover_goes_to_the_window_it_reserved_in(
    adm: Admission, clock: Clock
) -> None:
    clock.now = dt.datetime(2023, 11, 14, 23, 59, 59, tzinfo=dt.UTC).timestamp()
    b = budget(0.10, Seed(), "day")
    late = await adm.reserve([b], 0.10, allow_unpriced=True)
    clock.advance(2)
    await late.settle(0.04)  # yesterday's counter: 0.04
    assert await try_reserve(adm, [b], 0.10)  # today's is a new one
    clock.advance(-2)
    assert await try_reserve(adm, [b], 0.06)
    assert not await try_reserve(adm, [b], 0.000001)


async def test_budgets_of_one_request_reserve_all_or_nothing(adm: Admission) -> None:
    ws, k = budget(1.0, Seed(), name="ws:ws"), budget(0.05, Seed(), name="ws:key:k1")
    assert await try_reserve(adm, [ws, k], 0.04)
    for _ in range(3):
        with pytest.raises(BudgetExceeded) as info:
            await adm.reserve([ws, k], 0.04, allow_unpriced=True)
        assert info.value.name == "budget ws:key:k1"
    assert await try_reserve(adm, [ws], 0.96)  # 0.04 + 0.96: the refusals reserved nothing
    assert not await try_reserve(adm, [ws], 0.000001)


async def test_unpriced_requests(adm: Admission) -> None:
    b = budget(0.10, Seed())
    with pytest.raises(BudgetExceeded) as info:
        await adm.reserve([b], None, allow_unpriced=False)
    assert info.value.unpriced
    r = await adm.reserve([b], None, allow_unpriced=True)
    assert r.unpriced and r.reserved_usd == 0.0 and adm.unpriced == 1
    assert await try_reserve(adm, [b], 0.10)  # the unpriced one reserved nothing
    await r.settle(0.02)  # its price became known: it counts now
    assert not await try_reserve(adm, [b], None)  # nothing left: refused too
    assert (await adm.reserve([], None, allow_unpriced=False)).unpriced  # no budget applies


async def test_a_failing_seed_admits_unchecked_and_retries_later(adm: Admission) -> None:
    calls = 0

    async def broken(since: float) -> float:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("store down")
        return 0.0

    b = BudgetCheck("budget ws", "ws:ws", Budget(0.04), broken)
    await adm.reserve([b], 0.04, allow_unpriced=True)  # unchecked: nothing counted
    assert adm.seed_errors == 1 and adm.fail_open == 1
    adm.fail_open = 0  # the Redis fixture asserts no Redis failure
    assert await try_reserve(adm, [b], 0.04)
    assert not await try_reserve(adm, [b], 0.04)
    assert calls == 2


# --- in-process memory, metrics ------------------------------------------------------------------


async def test_local_backend_drops_idle_entries_and_stays_bounded(clock: Clock) -> None:
    backend = LocalBackend(max_entries=100)
    adm = Admission(backend, clock=clock)
    for i in range(1000):
        await adm.admit([key(RateLimits(rpm=5, concurrent=3), f"ws:key:{i}")], 1, 5)
        assert len(backend) <= 100 + 2  # the bound, plus what one decision adds
    assert backend.evicted > 0
    clock.advance(61)
    backend.sweep(to_now(clock))
    assert len(backend) == 0


def to_now(clock: Callable[[], float]) -> int:
    return round(clock() * 1_000_000)


def test_metrics_render_the_admission_counters_only_when_given() -> None:
    args: dict[str, Any] = {
        "cache": {},
        "cache_backend_errors": None,
        "blob_background_failures": 0,
        "writer": None,
    }
    plain = render(Metrics(), **args)
    assert "admission" not in plain
    text = render(
        Metrics(), **args, admission={"fail_open": 2, "rate_limited": 5, "budget_refused": 1}
    )
    assert text.startswith(plain.rstrip("\n"))
    lines = text.splitlines()
    assert "imagegate_admission_rate_limited_total 5" in lines
    assert "imagegate_admission_budget_refused_total 1" in lines
    assert "imagegate_admission_fail_open_total 2" in lines
    assert "# TYPE imagegate_admission_fail_open_total counter" in lines


async def test_from_config_picks_the_backend(make_config: Any) -> None:
    local = Admission.from_config(make_config())
    assert isinstance(local.backend, LocalBackend)
    shared = Admission.from_config(make_config(redis_url=REDIS_URL))
    try:
        assert isinstance(shared.backend, RedisBackend)
        assert shared.backend.prefix == "imagegate:rl:"
    finally:
        await shared.close()
