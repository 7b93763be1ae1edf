"""Requests in flight, counted, and the answer of one the shutdown had to cancel.

``DrainGuard`` wraps the app (a pure ASGI wrapper: no task, no body copies). It counts the
HTTP requests running, so the lifespan shutdown can wait for the ones uvicorn cancelled at the
end of ``shutdown_grace_s`` to finish their own cleanup (their traces submitted) before the
trace writer is flushed. A request cancelled that way whose answer had not started gets orq's
error body, ``503 server_shutting_down`` with ``Connection: close``, instead of the server's
bare 500: the client knows to retry, on another replica.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ServiceUnavailable
from ..lifecycle import DRAIN, Drain, cancelled_status
from ..telemetry.trace import new_trace_id
from .accesslog import CALL_STATE
from .responses import error_response

RETRY_AFTER_S = "1"


class InFlight:
    """How many requests run now; ``idle`` waits until none do (on the app's loop)."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def idle(self, timeout_s: float) -> bool:
        """True when nothing runs (at once, or within ``timeout_s``)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


class DrainGuard:
    def __init__(self, app: ASGIApp, inflight: InFlight, drain: Drain = DRAIN) -> None:
        self.app = app
        self.inflight = inflight
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        self.inflight.enter()
        try:
            await self.app(scope, receive, watched)
        except asyncio.CancelledError:
            if started or cancelled_status() != (503, "server_shutting_down"):
                raise  # the client's doing, or too late to answer: the server closes it
            await self._shutting_down(scope, receive, send)
        finally:
            self.inflight.leave()

    async def _shutting_down(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The cancellation was the shutdown's, aimed at this request's task: answering is
        the last thing the task does (it ends right after)."""
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # handled here: the answer below is not cancelled again
        call = (scope.get("state") or {}).get(CALL_STATE)
        trace_id = getattr(call, "trace_id", None) or new_trace_id()
        error = ServiceUnavailable(
            "the gateway is shutting down; retry the request",
            code="server_shutting_down",
            headers={"Connection": "close", "Retry-After": RETRY_AFTER_S},
        )
        await error_response(error, trace_id)(scope, receive, send)
