"""``Admission``: may this request start (rate limits), may it spend (budgets)?

The HTTP layer asks twice per request: ``admit`` before any work (requests/min, images/min,
concurrent requests of its key and identity), then ``reserve`` once the worst price is known.
Both are single atomic decisions in the backend: in-process counters, or the shared Redis when
one is configured. If Redis does not answer, requests are admitted unchecked (fail open) and
counted: an outage of the counters must not become an outage of the gateway.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from .backend import Backend, BackendUnavailable, BudgetItem
from .budgets import Seeds, items_for, micro_usd
from .gcra import CheckPlan, plan
from .headers import rate_headers
from .limits import (
    MAX_BUDGET_CHECKS,
    MAX_LEASE_S,
    MAX_RATE_CHECKS,
    BudgetCheck,
    BudgetExceeded,
    RateCheck,
    RateLimitExceeded,
    to_us,
)
from .local import LocalBackend
from .redis import RedisBackend

if TYPE_CHECKING:
    from imagegate.config import Config

log = logging.getLogger("imagegate.admission")
PLAN_CACHE = 4096


class Ticket:
    """An admitted request: its ``x-ratelimit-*`` headers and, until ``release``, its
    concurrency slots."""

    __slots__ = ("_release", "headers")

    def __init__(
        self, headers: dict[str, str], release: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.headers = headers
        self._release = release

    async def release(self) -> None:
        """Free the slots; later calls do nothing."""
        release, self._release = self._release, None
        if release is not None:
            await release()


class Reservation:
    """Money set aside in every budget of a request until ``settle`` says what it cost."""

    __slots__ = ("_settle", "reserved_usd", "unpriced")

    def __init__(
        self,
        reserved_usd: float,
        unpriced: bool,
        settle: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.reserved_usd = reserved_usd
        self.unpriced = unpriced
        self._settle = settle

    async def settle(self, actual_usd: float | None) -> None:
        """Replace the reservation by the real cost (None: nothing was spent); once only."""
        settle, self._settle = self._settle, None
        if settle is not None:
            await settle(micro_usd(actual_usd))


class Admission:
    def __init__(
        self,
        backend: Backend,
        *,
        clock: Callable[[], float] = time.time,
        seeds: Seeds | None = None,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.seeds = seeds or Seeds()
        self.fail_open = 0  # requests admitted unchecked because the shared store failed
        self.rate_limited = 0
        self.budget_refused = 0
        self.unpriced = 0  # requests that passed budgets without a known price
        self.seed_errors = 0
        self._last_warning = float("-inf")
        # Plans are pure functions of (checks, images): the same key asks the same every time.
        self._plans: dict[tuple[tuple[RateCheck, ...], int], list[CheckPlan]] = {}
        # ticket ids: random per instance (replicas never collide), then a counter (cheap)
        self._ticket_prefix = secrets.token_hex(6) + "-"
        self._tickets = itertools.count()

    @classmethod
    def from_config(cls, config: Config, *, clock: Callable[[], float] = time.time) -> Admission:
        """Redis when the config names a shared one, else counters in this process."""
        url = config.shared_redis_url
        if url is None:
            return cls(LocalBackend(), clock=clock)
        backend = RedisBackend(
            url, timeout_s=config.cache.timeout_s, retry_after_s=config.cache.retry_after_s
        )
        return cls(backend, clock=clock)

    @property
    def redis_errors(self) -> int:
        return self.backend.errors

    def stats(self) -> dict[str, int]:
        """Counters for ``/metrics``."""
        return {
            "fail_open": self.fail_open,
            "rate_limited": self.rate_limited,
            "budget_refused": self.budget_refused,
            "redis_errors": self.redis_errors,
            "unpriced": self.unpriced,
            "seed_errors": self.seed_errors,
        }

    async def close(self) -> None:
        await self.backend.close()

    # --- rate limits --------------------------------------------------------------------------

    async def admit(self, rates: Sequence[RateCheck], images: int, lease_s: float) -> Ticket:
        """Consume one request, ``images`` images and a concurrency slot from every check, or
        nothing and raise ``RateLimitExceeded``."""
        if len(rates) > MAX_RATE_CHECKS:
            raise ValueError(f"at most {MAX_RATE_CHECKS} rate checks per request")
        cache_key = (tuple(rates), images)
        plans = self._plans.get(cache_key)
        if plans is None:
            try:
                plans = plan(list(rates), images)
            except RateLimitExceeded:
                self.rate_limited += 1
                raise
            if len(self._plans) >= PLAN_CACHE:
                self._plans.clear()
            self._plans[cache_key] = plans
        if not plans:
            return Ticket({})
        now = to_us(self.clock())
        ticket = f"{self._ticket_prefix}{next(self._tickets):x}"
        lease = MAX_LEASE_S if math.isnan(lease_s) else min(max(lease_s, 0.001), MAX_LEASE_S)
        try:
            outcome = await self.backend.admit(plans, now, ticket, to_us(lease))
        except BackendUnavailable:
            self.fail_open += 1
            return Ticket({})
        headers = rate_headers(plans, outcome.tats, now)
        if outcome.failed is not None:
            index, which, retry_us = outcome.failed
            self.rate_limited += 1
            raise RateLimitExceeded(plans[index].kind, which, retry_us / 1_000_000, headers)
        held = [p for p in plans if p.concurrent is not None]
        return Ticket(headers, (lambda: self._release(held, ticket)) if held else None)

    async def _release(self, plans: list[CheckPlan], ticket: str) -> None:
        try:
            await self.backend.release(plans, ticket)
        except BackendUnavailable:
            pass  # counted by the backend; the slot expires with its lease

    # --- budgets ------------------------------------------------------------------------------

    async def reserve(
        self,
        budgets: Sequence[BudgetCheck],
        worst_usd: float | None,
        allow_unpriced: bool,
        *,
        unpriced: bool = False,
    ) -> Reservation:
        """Set ``worst_usd`` aside in every budget, or nothing and raise ``BudgetExceeded``.

        An unknown price (``worst_usd`` None or ``unpriced``) passes only when
        ``allow_unpriced``, reserves 0 and still needs some budget left."""
        if len(budgets) > MAX_BUDGET_CHECKS:
            raise ValueError(f"at most {MAX_BUDGET_CHECKS} budgets per request")
        unpriced = unpriced or worst_usd is None
        worst = 0 if unpriced else micro_usd(worst_usd)
        if not budgets:
            return Reservation(worst / 1_000_000, unpriced)
        now_s = self.clock()
        now = to_us(now_s)
        items = items_for(budgets, now_s)
        if unpriced and not allow_unpriced:
            self.budget_refused += 1
            raise BudgetExceeded(budgets[0].name, (items[0].end_us - now) / 1e6, unpriced=True)
        seeds: dict[int, int] = {}
        while True:  # at most once more than there are budgets: each pass seeds one or more
            try:
                outcome = await self.backend.reserve(items, now, worst, unpriced, seeds)
            except BackendUnavailable:
                self.fail_open += 1
                return Reservation(worst / 1_000_000, unpriced)
            if not outcome.missing:
                break
            try:
                values = await asyncio.gather(
                    *(self.seeds.get(budgets[i], items[i], now) for i in outcome.missing)
                )
            except Exception as exc:  # the trace store could not say what was spent
                self._seed_failed(exc)
                return Reservation(worst / 1_000_000, unpriced)
            seeds.update(zip(outcome.missing, values, strict=True))
        if outcome.failed is not None:
            self.budget_refused += 1
            item = items[outcome.failed]
            raise BudgetExceeded(budgets[outcome.failed].name, (item.end_us - now) / 1e6)
        if unpriced:
            self.unpriced += 1
        return Reservation(
            worst / 1_000_000, unpriced, lambda actual: self._settle(items, actual - worst)
        )

    async def _settle(self, items: list[BudgetItem], delta: int) -> None:
        if delta == 0:
            return
        try:
            await self.backend.settle(items, delta)
        except BackendUnavailable:
            pass  # counted by the backend; the counter stays at the reserved amount

    def _seed_failed(self, exc: Exception) -> None:
        self.seed_errors += 1
        self.fail_open += 1
        now = time.monotonic()
        if now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning("budget seed failed (%s); admitting unchecked", type(exc).__name__)
