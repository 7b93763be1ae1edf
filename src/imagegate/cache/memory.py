"""In-process cache: LRU bounded by bytes, with per-entry expiry.

Good for one worker or the library; entries are not shared between processes (use Redis).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class MemoryBackend:
    """Least-recently-used entries are evicted once the values exceed ``max_bytes``."""

    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.size_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._drop(key)
        if len(value) > self.max_bytes:
            return
        self._entries[key] = (self._clock() + ttl_s, value)
        self.size_bytes += len(value)
        while self.size_bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    async def delete(self, key: str) -> None:
        self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size_bytes -= len(entry[1])

    async def close(self) -> None:
        self._entries.clear()
        self.size_bytes = 0
