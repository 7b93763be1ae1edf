"""The exact-match cache step of the pipeline: lookup, coalesce, store (docs/images-and-cache.md).

The gateway hands over a ``produce`` callable (plan → execute → store images) and gets back
a ``Served`` plus how it was obtained::

    served, status = await layer.serve(request, ctx.api_key_id, produce)
    # status: "hit" (from the cache), "miss" (produced here), "coalesced" (shared a
    # concurrent identical request's upstream call)

A hit is answerable in either ``response_format``: the manifest names blobs, and the images
are re-read (b64_json) or re-signed (url) for every caller. Only complete successes are
stored; a failing backend is a miss, never an error.

Coalescing is per process (``coalesce.py``) and, with the Redis backend, across replicas too
(``flights.py``): the process's one flight per key then leads or follows the fleet's. With
the memory backend each process calls upstream once per key in flight, as each has its own
entries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from ..config import ConfigError
from ..output import Output, Served
from ..request import ImageRequest
from . import manifest
from .backend import CacheBackend
from .coalesce import InFlight
from .flights import SharedFlights
from .key import cache_key, digest_uploads
from .memory import MemoryBackend
from .redis import RedisBackend
from .settings import CacheConfig

log = logging.getLogger("imagegate.cache")

Status = Literal["hit", "miss", "coalesced"]
DEFAULT_TTL_S = 1800


def make_backend(config: CacheConfig) -> CacheBackend:
    """The backend ``cache.backend`` names."""
    if config.backend == "redis":
        try:
            return RedisBackend(
                config.redis_url,
                prefix=config.prefix,
                timeout_s=config.timeout_s,
                retry_after_s=config.retry_after_s,
            )
        except ValueError as exc:  # a malformed URL: say which key, never its value
            raise ConfigError(f"cache.redis_url: {type(exc).__name__}: not a redis URL") from None
    return MemoryBackend(config.max_bytes)


class CacheLayer:
    """Exact-match cache over a backend, with in-process coalescing of identical requests."""

    def __init__(
        self,
        config: CacheConfig,
        output: Output,
        *,
        backend: CacheBackend | None = None,
        deadline_s: float = 900.0,
    ) -> None:
        self.backend = backend or make_backend(config)
        self.output = output
        self.inflight: InFlight[tuple[Served, Status]] = InFlight()
        # across replicas: only when the answers are shared (flights.py)
        self.flights: SharedFlights | None = None
        if isinstance(self.backend, RedisBackend) and config.shared_flights:
            self.flights = SharedFlights(self.backend, config, deadline_s=deadline_s)
        self.hits = 0
        self.misses = 0
        self.coalesced = 0
        self.stored = 0

    @staticmethod
    def asked(request: ImageRequest) -> bool:
        """Whether the request carries ``cache: {type: "exact_match"}``."""
        return request.options.cache is not None

    async def serve(
        self,
        request: ImageRequest,
        scope: str | None,
        produce: Callable[[], Awaitable[Served]],
    ) -> tuple[Served, Status]:
        await digest_uploads(request)
        key = cache_key(request, scope)
        hit = await self.lookup(key, request.response_format)
        if hit is not None:
            self.hits += 1
            return hit, "hit"
        ttl_s = request.options.cache.ttl if request.options.cache else DEFAULT_TTL_S

        async def lead() -> tuple[Served, Status]:
            if self.flights is not None:  # one flight per key in the fleet
                keep = self._keepable(request)
                return await self.flights.run(key, ttl_s, produce, keep, self._read)
            # A flight that just finished may have stored the answer since our lookup.
            again = await self.lookup(key, "b64_json")  # bytes loaded: answerable any way
            if again is not None:
                return again, "hit"
            served = await produce()
            if self.complete(request, served):
                await self.store(key, served, ttl_s)
            return served, "miss"

        def start() -> asyncio.Task[tuple[Served, Status]]:
            """The flight owns the leader's uploads: held from the moment it exists (the
            leader's client may leave at once) until it ends, however it ends."""
            release = request.hold_files()
            task = asyncio.ensure_future(lead())
            task.add_done_callback(lambda _: release())
            return task

        (served, status), leader = await self.inflight.run(key, start)
        if not leader:
            status = "coalesced"
        if status == "hit":
            self.hits += 1
        elif status == "miss":
            self.misses += 1
        else:
            self.coalesced += 1
        return served, status

    @staticmethod
    def complete(request: ImageRequest, served: Served) -> bool:
        """A complete success: every image asked for, each one stored."""
        return len(served.images) >= request.n_images and all(
            image.key is not None for image in served.images
        )

    def _keepable(self, request: ImageRequest) -> Callable[[Served], bytes | None]:
        """What to cache for an answer to ``request``: its manifest, if a complete success."""

        def keep(served: Served) -> bytes | None:
            if not self.complete(request, served):
                return None
            self.stored += 1
            return manifest.encode(served)

        return keep

    async def _read(self, raw: bytes) -> Served | None:
        """A cached entry another replica stored, loaded (answerable any way), or None."""
        served = manifest.decode(raw)
        if served is None or not await self.output.hydrate(served, "b64_json"):
            log.info("unusable cache entry from a flight")
            return None
        return served

    def metrics_text(self) -> str:
        """Coalescing: waiters on this process's flights, and the flights across replicas."""
        gauge = "imagegate_cache_inflight_waiters"
        text = (
            f"# HELP {gauge} Requests waiting on an identical request's flight here.\n"
            f"# TYPE {gauge} gauge\n{gauge} {self.inflight.waiters()}\n"
        )
        return text + (self.flights.metrics_text() if self.flights is not None else "")

    async def lookup(self, key: str, want: str | None) -> Served | None:
        """A cached ``Served`` made answerable in ``want``, or None."""
        raw = await self.backend.get(key)
        if raw is None:
            return None
        served = manifest.decode(raw)
        if served is None or not await self.output.hydrate(served, want):
            log.info("dropping unusable cache entry %s", key[:16])
            await self.backend.delete(key)
            return None
        return served

    async def store(self, key: str, served: Served, ttl_s: int) -> None:
        await self.backend.set(key, manifest.encode(served), ttl_s)
        self.stored += 1

    async def close(self) -> None:
        if self.flights is not None:
            await self.flights.close()
        await self.backend.close()
