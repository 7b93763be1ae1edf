"""A Redis client that never holds a request: the one way the gateway talks to Redis.

Every shared feature (the cache, rate limits and budgets) treats Redis as optional at run
time: sockets time out fast, nothing is retried, and after a failure Redis is left alone for
``retry_after_s`` (callers then do without it: serve uncached, admit unchecked). Each failure
bumps ``errors``; a warning naming the consequence is logged at most once per
``warn_every_s``. The URL is never logged (it may hold a password) — only host and port::

    redis = FailFastRedis(url, consequence="serving uncached", log=log)
    value = await redis.call("get", lambda: redis.client.get(key))   # or RedisDown
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

T = TypeVar("T")


class RedisDown(Exception):
    """Redis failed just now, or is being left alone after a recent failure."""


class FailFastRedis:
    def __init__(
        self,
        url: str,
        *,
        consequence: str,
        log: logging.Logger,
        timeout_s: float = 0.25,
        retry_after_s: float = 1.0,
        warn_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consequence = consequence
        self.log = log
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.warn_every_s = warn_every_s
        self._clock = clock
        parts = urlsplit(url)
        self.where = f"{parts.hostname or parts.path}:{parts.port or 6379}"  # never the password
        self.client: Redis = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self.errors = 0
        self.warnings = 0
        self._down_until = float("-inf")
        self._last_warning = float("-inf")

    @property
    def available(self) -> bool:
        """False while backing off after a failure."""
        return self._clock() >= self._down_until

    async def call(self, op: str, make: Callable[[], Awaitable[T]]) -> T:
        """``await make()`` within twice the socket timeout, or ``RedisDown``."""
        if not self.available:
            raise RedisDown(op)
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                return await make()
        except (RedisError, OSError, TimeoutError) as exc:
            self.failed(op, exc)
            raise RedisDown(op) from exc

    def failed(self, op: str, exc: BaseException) -> None:
        self.errors += 1
        now = self._clock()
        self._down_until = now + self.retry_after_s
        if now - self._last_warning >= self.warn_every_s:
            self._last_warning = now
            self.warnings += 1
            self.log.warning(
                "redis at %s unreachable (%s: %s); %s",
                self.where,
                op,
                type(exc).__name__,
                self.consequence,
            )

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except (RedisError, OSError):
            pass
