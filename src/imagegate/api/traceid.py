"""``x-orq-trace-id`` on every response, not only on the ones that already name a trace.

The image routes and every error set their own (the id of the trace they record); control
routes (``/health``, ``/v2/traces``, …) have none, yet clients and proxies correlate logs by it.
This pure ASGI wrapper adds a fresh id to a response that lacks one and leaves every other
response untouched: one scan of a short header list, no Request/Response objects.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..telemetry.trace import new_trace_id

HEADER = b"x-orq-trace-id"


class TraceIdHeader:
    """Adds ``x-orq-trace-id`` to an HTTP response that has none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or ()
                for name, _ in headers:  # a loop, not any(): no generator per response
                    if name.lower() == HEADER:
                        break
                else:
                    message["headers"] = [*headers, (HEADER, new_trace_id().encode("ascii"))]
            await send(message)

        await self.app(scope, receive, send_with_id)
