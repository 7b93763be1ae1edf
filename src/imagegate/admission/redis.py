"""Counters in the one shared Redis: every replica of the gateway sees the same limits.

One EVALSHA per operation (admit, release, reserve, settle), each script atomic. Keys live
under ``prefix`` (``r:``/``i:`` GCRA states, ``c:`` concurrency sets, ``b:`` budget counters)
and carry TTLs, so idle keys vanish. "Now" comes from the caller's clock, not Redis's: replicas
agree on limits as well as their clocks agree (NTP). A dead Redis must not hold a request
(``redisconn.FailFastRedis``): each call then raises ``BackendUnavailable`` and the caller
fails open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..redisconn import FailFastRedis, RedisDown
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
        self.redis = FailFastRedis(
            url,
            consequence="admitting requests unchecked",
            log=log,
            timeout_s=timeout_s,
            retry_after_s=retry_after_s,
            warn_every_s=warn_every_s,
            clock=monotonic,
        )
        self.client = self.redis.client
        self._admit = self.client.register_script(lua.ADMIT)
        self._release = self.client.register_script(lua.RELEASE)
        self._reserve = self.client.register_script(lua.RESERVE)
        self._settle = self.client.register_script(lua.SETTLE)

    @property
    def errors(self) -> int:
        return self.redis.errors

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
        await self.redis.close()

    def _slots(self, plan: CheckPlan) -> str:
        return f"{self.prefix}c:{plan.key}"

    async def _call(
        self, op: str, script: Any, keys: list[str], args: list[int | str]
    ) -> list[Any]:
        try:
            res = await self.redis.call(op, lambda: script(keys=keys, args=args))
        except RedisDown as exc:
            raise BackendUnavailable(op) from exc
        if not isinstance(res, list):
            raise BackendUnavailable(f"{op}: unexpected reply")
        return res


def _dim_args(d: Dim | None) -> tuple[int, int]:
    return (0, -1) if d is None else (d.inc, d.cap)


def _or_none(limit: int | None) -> int:
    return -1 if limit is None else limit


def _tat(value: Any) -> int | None:
    tat = int(value)
    return None if tat < 0 else tat
