"""Wait for a provider-side job (BFL tasks, Replicate predictions, fal queue requests).

Why this exists: polling APIs answer a job id first and the image later, and an attempt must
still obey the executor's per-attempt timeout. The executor enforces that by cancelling the
attempt's task, so the loop here only ever waits with ``asyncio.sleep``: the cancel lands on
the next await and no further poll is sent. When a job is abandoned (cancelled, timed out,
or a poll failed) a best-effort cancel is fired at the provider in the background, bounded in
time and never awaited by the attempt that is going away::

    jobs = Jobs(interval_s=entry.option("poll_interval_s", 1.0))
    state = await jobs.wait(fetch_status, lambda s: s["status"] != "Pending",
                            cancel=lambda: session.post(cancel_url))
    ...
    await jobs.close()  # in the provider's close(): lets in-flight cancels finish
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ...errors import UpstreamConnectionError, UpstreamFailure

T = TypeVar("T")

CancelCall = Callable[[], Awaitable[Any]]


def transient(failure: UpstreamFailure) -> bool:
    """A poll failure worth polling again for: the connection, a rate limit or a 5xx."""
    if isinstance(failure, UpstreamConnectionError):
        return True
    return failure.status is not None and (failure.status == 429 or failure.status >= 500)


def interval_option(value: Any, default: float) -> float:
    """A positive number from config (a poll interval, a wait, a strength), else ``default``.

    Config values may arrive as strings (env, YAML); garbage falls back instead of failing the
    provider's construction at startup.
    """
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default


class Jobs:
    """Polls jobs for one provider and tracks the cancel calls it fires in the background."""

    def __init__(
        self, interval_s: float = 1.0, cancel_timeout_s: float = 5.0, max_poll_errors: int = 3
    ) -> None:
        self.interval_s = interval_s
        self.max_poll_errors = max_poll_errors
        self.cancel_timeout_s = cancel_timeout_s
        self._pending: set[asyncio.Task[None]] = set()

    async def wait(
        self,
        fetch: Callable[[], Awaitable[T]],
        done: Callable[[T], bool],
        *,
        cancel: CancelCall | None = None,
    ) -> T:
        """``fetch()`` every ``interval_s`` until ``done(state)``; return that state.

        A poll that fails transiently (connection error, 429, 5xx) is tried again after the
        interval, up to ``max_poll_errors`` times in a row: the job itself is still running.
        If this coroutine is cancelled or a failure is final, ``cancel`` is fired (not
        awaited) and the exception propagates unchanged.
        """
        errors = 0
        try:
            while True:
                try:
                    state = await fetch()
                except UpstreamFailure as exc:
                    errors += 1
                    if errors > self.max_poll_errors or not transient(exc):
                        raise
                else:
                    errors = 0
                    if done(state):
                        return state
                await asyncio.sleep(self.interval_s)
        except BaseException:
            if cancel is not None:
                self.fire(cancel)
            raise

    def fire(self, call: CancelCall) -> None:
        """Run ``call`` in the background, bounded by ``cancel_timeout_s``, errors ignored."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop.is_closed():
            return
        task = loop.create_task(self._quietly(call))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _quietly(self, call: CancelCall) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.cancel_timeout_s):
                await call()

    @property
    def pending(self) -> int:
        """Background cancel calls still running."""
        return len(self._pending)

    async def close(self) -> None:
        """Give in-flight cancel calls a bounded chance to finish (they share the session)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self.cancel_timeout_s)
