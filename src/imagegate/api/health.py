"""``GET /health/live`` and ``GET /health/ready``: what a load balancer or Kubernetes probes.

``live`` says the process answers (no dependency is asked: a dead database must not get every
replica restarted). ``ready`` says this replica can do its work now: the store, the Redis (when
one is configured) and the blob store each answered within ``lifecycle.ready_timeout_s``; the
JSON names the part that did not. While the replica drains (after SIGTERM) it answers 503 at
once, so the balancer stops sending before the listener closes. Both are unauthenticated and
outside the rate limits, so they tell nothing beyond up/down per part, and a flood of probes
is one check per ``ready_cache_s`` (concurrent probes share the one running).
``GET /health`` is unchanged (providers list).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..config import Config
from ..gateway import Gateway
from ..lifecycle import DRAIN
from ..lifecycle.settings import Part
from .responses import JSONResponse

PROBE_KEY = "0" * 64  # a well-formed blob key no image has: only its absence is learnt
NO_STORE = {"Cache-Control": "no-store"}


async def live(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


async def ready(request: Request) -> Response:
    """Readiness: store, Redis and blob store reachable, and not draining."""
    if DRAIN.draining:
        return JSONResponse({"status": "draining"}, status_code=503, headers=NO_STORE)
    readiness: Readiness = request.app.state.readiness
    ok, checks = await readiness.check()
    body = {"status": "ready" if ok else "not_ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503, headers=NO_STORE)


def health_routes() -> list[BaseRoute]:
    return [
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
    ]


class Readiness:
    def __init__(self, config: Config, gateway: Gateway) -> None:
        self.settings = config.lifecycle
        self.gateway = gateway
        self.redis_url = config.shared_redis_url
        self._redis: Redis | None = None
        self._answer: tuple[bool, dict[str, Any]] | None = None
        self._at = 0.0
        self._running: asyncio.Future[tuple[bool, dict[str, Any]]] | None = None

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """The last answer if fresh, else the check running now, else a new one."""
        if self._answer is not None and time.monotonic() - self._at < self.settings.ready_cache_s:
            return self._answer
        if self._running is None:
            self._running = asyncio.ensure_future(self._check())
            self._running.add_done_callback(self._done)
        return await asyncio.shield(self._running)  # a probe that gives up stops no one

    def _done(self, future: asyncio.Future[tuple[bool, dict[str, Any]]]) -> None:
        self._running = None
        if not future.cancelled() and future.exception() is None:
            self._answer, self._at = future.result(), time.monotonic()

    async def _check(self) -> tuple[bool, dict[str, Any]]:
        probes: dict[Part, Callable[[], Awaitable[object]] | None] = {
            "store": lambda: self.gateway.store.get_workspace("default"),
            "redis": self._ping if self.redis_url else None,
            "blobs": lambda: self.gateway.output.store.exists(PROBE_KEY),
        }
        names = list(probes)
        results = await asyncio.gather(*(self._one(probes[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        ok = all(checks[part]["ok"] is not False for part in self.settings.ready_required)
        return ok, checks

    async def _one(self, probe: Callable[[], Awaitable[object]] | None) -> dict[str, Any]:
        if probe is None:
            return {"ok": None, "detail": "not configured"}
        started = time.perf_counter()
        try:
            await asyncio.wait_for(probe(), self.settings.ready_timeout_s)
        except TimeoutError:
            return {"ok": False, "detail": f"no answer within {self.settings.ready_timeout_s:g} s"}
        except Exception as exc:  # the kind only: no address, no password, no server text
            return {"ok": False, "detail": type(exc).__name__}
        return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}

    async def _ping(self) -> None:
        if self._redis is None:
            assert self.redis_url is not None
            timeout = self.settings.ready_timeout_s
            self._redis = Redis.from_url(
                self.redis_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),  # one try: the probe says what is true now
            )
        await self._redis.ping()

    async def close(self) -> None:
        if self._running is not None:
            self._running.cancel()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
