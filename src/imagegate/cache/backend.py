"""What a cache backend does: keep small byte strings (manifests) for a while.

Backends never raise on a get or set: a cache that fails is a cache that misses, so the
request is served upstream instead of failing.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CacheBackend(Protocol):
    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None when absent, expired or unreachable."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """Keep ``value`` for ``ttl_s`` seconds (best effort)."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (best effort)."""
        ...

    async def close(self) -> None: ...
