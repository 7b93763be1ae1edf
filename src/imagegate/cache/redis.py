"""Redis cache backend (redis-py asyncio): manifests shared by every worker and gateway.

A dead Redis must never hold a request: sockets time out fast, nothing is retried, and after
a failure Redis is left alone for ``retry_after_s`` (the request is served uncached). Each
failure bumps ``errors``; a warning is logged at most once per ``warn_every_s``. The URL is
never logged (it may hold a password) — only host and port.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("imagegate.cache")


class RedisBackend:
    """``prefix + key`` → value with ``EX ttl``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "imagegate:cache:",
        timeout_s: float = 0.25,
        retry_after_s: float = 1.0,
        warn_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.warn_every_s = warn_every_s
        self._clock = clock
        parts = urlsplit(url)
        self._where = f"{parts.hostname or parts.path}:{parts.port or 6379}"
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

    def _failed(self, op: str, exc: BaseException) -> None:
        self.errors += 1
        now = self._clock()
        self._down_until = now + self.retry_after_s
        if now - self._last_warning >= self.warn_every_s:
            self._last_warning = now
            self.warnings += 1
            log.warning(
                "redis cache at %s unreachable (%s: %s); serving uncached",
                self._where, op, type(exc).__name__,
            )  # fmt: skip

    async def get(self, key: str) -> bytes | None:
        if not self.available:
            return None
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                value = await self.client.get(self.prefix + key)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("get", exc)
            return None
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        if not self.available:
            return
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                await self.client.set(self.prefix + key, value, ex=ttl_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("set", exc)

    async def delete(self, key: str) -> None:
        if not self.available:
            return
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                await self.client.delete(self.prefix + key)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("delete", exc)

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except (RedisError, OSError):
            pass
