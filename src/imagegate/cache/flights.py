"""Coalescing across replicas: one upstream call per cache key in flight in the whole fleet.

In-process coalescing (``coalesce.py``) gives each process one flight per key; this module
makes those flights agree across processes through the Redis the cache lives in (so only with
``cache.backend: redis``: a follower must be able to read the leader's answer). Beside the
cache entry ``prefix + key`` live the lock ``prefix + "flight:" + key`` (a random token with
``PX`` = ``flight_lease_s``) and one channel, ``prefix + "flights"`` (``notify.py``).

- ``CLAIM``, one round trip: the cached entry if there is one (a flight just finished); else
  the lock if it is free (this replica leads); else nothing (another one leads: follow). It
  takes the place of the re-read a flight did before calling, so it costs nothing extra.
- The leader renews the lock every third of the lease while its call runs, then ``FINISH``,
  one round trip in place of the plain SET: store the answer (only a complete success),
  free the lock if it is still its own, publish the key.
- A follower waits for that notification, or ``flight_poll_s``, then claims again: the entry
  → answered from it; the lock free → the leader failed without an answer to keep (it freed
  the lock) or died (its lease lapsed): this follower takes over and calls; else it waits
  again. The wait is bounded by the routing deadline (504 ``provider_timeout``). A leader's
  failure is therefore not shared across replicas: one follower (per replica, since its own
  process's followers share its flight) tries in turn.
- Redis down (or backing off after a failure) at a claim: this replica calls on its own and
  counts ``fail_open``. A lease that could not be renewed is counted ``lease_lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from ..errors import ProviderTimeout
from ..output import Served
from ..redisconn import RedisDown
from .notify import Notifier
from .redis import RedisBackend
from .settings import CacheConfig

log = logging.getLogger("imagegate.cache")

Status = Literal["hit", "miss", "coalesced"]
OUTCOMES = ("led", "took_over", "followed", "fail_open", "lease_lost")

CLAIM = """
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {0}
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
FINISH = """
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"""


class SharedFlights:
    def __init__(self, backend: RedisBackend, config: CacheConfig, *, deadline_s: float) -> None:
        self.backend = backend
        self.prefix = backend.prefix
        self.lease_s = config.flight_lease_s
        self.poll_s = config.flight_poll_s
        self.deadline_s = deadline_s
        client = backend.client
        self._claim = client.register_script(CLAIM)
        self._renew = client.register_script(RENEW)
        self._finish = client.register_script(FINISH)
        self.channel = backend.prefix + "flights"
        self.notifier = Notifier(
            config.redis_url,
            self.channel,
            timeout_s=config.timeout_s,
            retry_after_s=max(config.retry_after_s, 0.1),
        )
        self.counts: Counter[str] = Counter()
        self.leading = 0  # flights this process leads now
        self.waiting = 0  # flights of this process waiting for another replica's

    async def run(
        self,
        key: str,
        ttl_s: int,
        produce: Callable[[], Awaitable[Served]],
        keep: Callable[[Served], bytes | None],
        read: Callable[[bytes], Awaitable[Served | None]],
    ) -> tuple[Served, Status]:
        """The answer for ``key`` and how it was obtained (see the module docstring).

        ``keep`` gives the bytes to cache for an answer (None: not cacheable); ``read`` turns
        a cached entry back into an answer (None: unusable, dropped and claimed again)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline_s
        followed = False
        event: asyncio.Event | None = None
        try:
            while True:
                if event is not None:
                    event.clear()
                token = secrets.token_hex(16)
                try:
                    lease_ms = int(self.lease_s * 1000)
                    got = await self._call("claim", self._claim, self._keys(key), token, lease_ms)
                except RedisDown:
                    self.counts["fail_open"] += 1
                    return await self._alone(key, ttl_s, produce, keep), "miss"
                if got[0] == 1:
                    served = await read(got[1])
                    if served is not None:
                        return served, "coalesced" if followed else "hit"
                    await self.backend.delete(key)
                    continue
                if got[0] == 2:
                    self.counts["took_over" if followed else "led"] += 1
                    return await self._lead(key, token, ttl_s, produce, keep), "miss"
                if not followed:
                    followed = True
                    self.counts["followed"] += 1
                    self.waiting += 1
                if event is None:  # subscribed before the next claim: no announcement is
                    await self.notifier.ready()  # missed between that claim and the wait
                    event = self.notifier.watch(key)
                    continue
                remaining = give_up - loop.time()
                if remaining <= 0:
                    raise ProviderTimeout(
                        f"the request's overall deadline of {self.deadline_s:g} s was reached "
                        "waiting for an identical request in flight on another replica"
                    )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(self.poll_s, remaining)):
                        await event.wait()
        finally:
            if followed:
                self.waiting -= 1
            if event is not None:
                self.notifier.unwatch(key, event)

    async def _lead(
        self,
        key: str,
        token: str,
        ttl_s: int,
        produce: Callable[[], Awaitable[Served]],
        keep: Callable[[Served], bytes | None],
    ) -> Served:
        """Call with the lock held (renewed), then store, free and announce in one trip."""
        self.leading += 1
        renewing = asyncio.ensure_future(self._renewing(key, token))
        value = b""
        try:
            served = await produce()
            value = keep(served) or b""
            return served
        finally:  # however the call ended: followers must learn it at once
            self.leading -= 1
            renewing.cancel()
            args = (token, value, ttl_s, self.channel, key)
            with contextlib.suppress(RedisDown):
                await self._call("finish", self._finish, self._keys(key), *args)

    async def _alone(
        self,
        key: str,
        ttl_s: int,
        produce: Callable[[], Awaitable[Served]],
        keep: Callable[[Served], bytes | None],
    ) -> Served:
        """Redis is down: call as a lone process would, and store when Redis is back."""
        served = await produce()
        value = keep(served)
        if value is not None:
            await self.backend.set(key, value, ttl_s)
        return served

    async def _renewing(self, key: str, token: str) -> None:
        lease_ms = int(self.lease_s * 1000)
        while True:
            await asyncio.sleep(self.lease_s / 3)  # a period, not a synchronisation
            try:
                lock = self._keys(key)[1:]
                if not await self._call("renew", self._renew, lock, token, lease_ms):
                    self.counts["lease_lost"] += 1
                    log.warning("cache flight lock %s lost mid-call", key[:16])
                    return
            except RedisDown:
                self.counts["lease_lost"] += 1  # another replica may take over: one more call
                return

    def _keys(self, key: str) -> list[str]:
        """The cache entry and the flight's lock."""
        return [self.prefix + key, self.prefix + "flight:" + key]

    async def _call(self, op: str, script: Any, keys: list[str], *args: Any) -> Any:
        return await self.backend.redis.call(op, lambda: script(keys=keys, args=args))

    def metrics_text(self) -> str:
        name = "imagegate_cache_flights_total"
        lines = [
            f"# HELP {name} Cache flights across replicas by outcome (cache.backend: redis).",
            f"# TYPE {name} counter",
            *(f'{name}{{outcome="{o}"}} {self.counts[o]}' for o in OUTCOMES),
        ]
        for gauge, value, what in (
            ("imagegate_cache_flights_leading", self.leading, "Flights this process leads now."),
            (
                "imagegate_cache_flights_waiting",
                self.waiting,
                "Flights of this process waiting for another replica's call.",
            ),
        ):
            lines += [f"# HELP {gauge} {what}", f"# TYPE {gauge} gauge", f"{gauge} {value}"]
        return "\n".join(lines) + "\n"

    async def close(self) -> None:
        await self.notifier.close()
