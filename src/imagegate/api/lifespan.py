"""What the app's lifespan does to run as one replica of a fleet (docs/deployment.md).

Start: watch SIGTERM/SIGINT (``lifecycle/signals.py``) and, under ``imagegate serve
--workers N``, publish this worker's metrics (``telemetry/workers.py``). Stop, before the
gateway closes (and so before the trace writer, the archive writes and the store are
flushed): wait for the requests uvicorn cancelled at the end of the grace to finish their own
cleanup, then run the shutdown hooks in the order they were added.

Shutdown hooks are how a component with work of its own to hand back (a job runner's leases,
a coalescing lock) joins the drain: ``app.state.lifespan.on_shutdown(hook)``, where ``hook``
is an ``async`` function of no arguments. A hook that fails is logged; the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ..config import Config
from ..gateway import Gateway
from ..lifecycle.signals import watch_signals
from ..telemetry.workers import WorkerMetrics
from .drain import InFlight
from .health import Readiness

log = logging.getLogger("imagegate.api")
CANCELLED_CLEANUP_S = 5.0  # cancelled requests only run their ``finally`` blocks

Hook = Callable[[], Awaitable[None]]


class Lifespan:
    def __init__(self, config: Config, gateway: Gateway) -> None:
        self.config = config
        self.inflight = InFlight()
        self.readiness = Readiness(config, gateway)
        self.workers = WorkerMetrics.from_env()
        self.hooks: list[Hook] = []
        self._metrics: Callable[[], str] = lambda: ""
        self._undo_signals: Callable[[], None] = lambda: None

    def on_shutdown(self, hook: Hook) -> None:
        self.hooks.append(hook)

    def start(self, metrics: Callable[[], str]) -> None:
        self._metrics = metrics
        self._undo_signals = watch_signals(self.config.lifecycle.shutdown_grace_s)
        if self.workers is not None:
            self.workers.start(metrics)

    def metrics_text(self) -> str:
        """This process's metrics, summed over every worker under ``--workers N``."""
        own = self._metrics()
        return own if self.workers is None else self.workers.merged(own)

    async def stop(self) -> None:
        if not await self.inflight.idle(CANCELLED_CLEANUP_S):
            log.warning("%d request(s) still running at shutdown", self.inflight.count)
        for hook in self.hooks:
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook %r failed", hook)
        await self.readiness.close()
        if self.workers is not None:
            await self.workers.stop(self._metrics())
        self._undo_signals()
