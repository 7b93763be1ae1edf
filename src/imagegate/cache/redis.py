"""Redis cache backend (redis-py asyncio): manifests shared by every worker and gateway.

A dead Redis must never hold a request (``redisconn.FailFastRedis``): after a failure the
request is served uncached and Redis is left alone for ``retry_after_s``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from ..redisconn import FailFastRedis, RedisDown

log = logging.getLogger("imagegate.cache")


class RedisBackend:
    """``prefix + key`` → value with ``EX ttl``; every failure reads as a miss."""

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
        self.redis = FailFastRedis(
            url,
            consequence="serving uncached",
            log=log,
            timeout_s=timeout_s,
            retry_after_s=retry_after_s,
            warn_every_s=warn_every_s,
            clock=clock,
        )
        self.client = self.redis.client

    @property
    def available(self) -> bool:
        return self.redis.available

    @property
    def errors(self) -> int:
        return self.redis.errors

    @property
    def warnings(self) -> int:
        return self.redis.warnings

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.redis.call("get", lambda: self.client.get(self.prefix + key))
        except RedisDown:
            return None
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        with contextlib.suppress(RedisDown):
            await self.redis.call(
                "set", lambda: self.client.set(self.prefix + key, value, ex=ttl_s)
            )

    async def delete(self, key: str) -> None:
        with contextlib.suppress(RedisDown):
            await self.redis.call("delete", lambda: self.client.delete(self.prefix + key))

    async def close(self) -> None:
        await self.redis.close()
