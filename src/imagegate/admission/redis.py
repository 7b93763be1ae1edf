"""Counters in the one shared Redis: every replica of the gateway sees the same limits.

One EVALSHA per operation (admit, release, reserve, settle), each script atomic. Keys live
under ``prefix`` (``r:``/``i:`` GCRA states, ``c:`` concurrency sets, ``b:`` budget counters)
and carry TTLs, so idle keys vanish. "Now" comes from the caller's clock, not Redis's: replicas
agree on limits as well as their clocks agree (NTP). A dead Redis must not hold a request:
sockets time out fast, nothing is retried, and after a failure Redis is left alone for
``retry_after_s`` — each call raises ``BackendUnavailable`` and the caller fails open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from . import lua
from .backend import (
    CONCURRENT_RETRY_US,
    BackendUnavailable,
    BudgetItem,
    BudgetOutcome,
    RateOutcome,
)
from .gcra import CheckPlan, Dim
from .limits import Which

log = logging.getLogger("imagegate.admission")

BUDGET_GRACE_MS = 2 * 3600 * 1000  # a window's counter outlives it for late settles
_WHICH: dict[int, Which] = {1: "requests", 2: "images", 3: "concurrent"}


class RedisBackend:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "imagegate:rl:",
        timeout_s: float = 0.25,
        retry_after_s: float = 1.0,
        warn_every_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.warn_every_s = warn_every_s
        self._monotonic = monotonic
        parts = urlsplit(url)
        self._where = f"{parts.hostname or parts.path}:{parts.port or 6379}"  # never the password
        self.client: Redis = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._admit = self.client.register_script(lua.ADMIT)
        self._release = self.client.register_script(lua.RELEASE)
        self._reserve = self.client.register_script(lua.RESERVE)
        self._settle = self.client.register_script(lua.SETTLE)
        self.errors = 0
        self._down_until = float("-inf")
        self._last_warning = float("-inf")

    async def admit(
        self, plans: Sequence[CheckPlan], now: int, ticket: str, lease_us: int
    ) -> RateOutcome:
        keys: list[str] = []
        args: list[int | str] = [now, ticket, lease_us, CONCURRENT_RETRY_US]
        for p in plans:
            keys += [f"{self.prefix}r:{p.key}", f"{self.prefix}i:{p.key}", self._slots(p)]
            args += [*_dim_args(p.requests), *_dim_args(p.images), _or_none(p.concurrent)]
        res = await self._call("admit", self._admit, keys, args)
        tats = [(_tat(res[4 + 2 * i]), _tat(res[5 + 2 * i])) for i in range(len(plans))]
        if int(res[0]) == 1:
            return RateOutcome(tats)
        return RateOutcome(tats, (int(res[1]) - 1, _WHICH[int(res[2])], int(res[3])))

    async def release(self, plans: Sequence[CheckPlan], ticket: str) -> None:
        keys = [self._slots(p) for p in plans if p.concurrent is not None]
        if keys:
            await self._call("release", self._release, keys, [ticket])

    async def reserve(
        self,
        items: Sequence[BudgetItem],
        now: int,
        worst: int,
        unpriced: bool,
        seeds: Mapping[int, int],
    ) -> BudgetOutcome:
        keys = [self.prefix + item.counter for item in items]
        args: list[int | str] = [worst, 1 if unpriced else 0]
        for i, item in enumerate(items):
            ttl_ms = max(1, (item.end_us - now) // 1000) + BUDGET_GRACE_MS
            args += [item.limit, ttl_ms, str(seeds[i]) if i in seeds else ""]
        res = await self._call("reserve", self._reserve, keys, args)
        status = int(res[0])
        if status == 2:
            return BudgetOutcome([int(i) - 1 for i in res[1:]])
        return BudgetOutcome([], None if status == 1 else int(res[1]) - 1)

    async def settle(self, items: Sequence[BudgetItem], delta: int) -> None:
        keys = [self.prefix + item.counter for item in items]
        await self._call("settle", self._settle, keys, [delta])

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except (RedisError, OSError):
            pass

    def _slots(self, plan: CheckPlan) -> str:
        return f"{self.prefix}c:{plan.key}"

    async def _call(
        self, op: str, script: Any, keys: list[str], args: list[int | str]
    ) -> list[Any]:
        if self._monotonic() < self._down_until:
            raise BackendUnavailable(op)
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                res = await script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(op, exc)
            raise BackendUnavailable(op) from exc
        if not isinstance(res, list):
            raise BackendUnavailable(f"{op}: unexpected reply")
        return res

    def _failed(self, op: str, exc: BaseException) -> None:
        self.errors += 1
        now = self._monotonic()
        self._down_until = now + self.retry_after_s
        if now - self._last_warning >= self.warn_every_s:
            self._last_warning = now
            log.warning(
                "redis for rate limits and budgets at %s unreachable (%s: %s); admitting "
                "requests unchecked", self._where, op, type(exc).__name__,
            )  # fmt: skip


def _dim_args(d: Dim | None) -> tuple[int, int]:
    return (0, -1) if d is None else (d.inc, d.cap)


def _or_none(limit: int | None) -> int:
    return -1 if limit is None else limit


def _tat(value: Any) -> int | None:
    tat = int(value)
    return None if tat < 0 else tat
