"""The access-log middleware: one line per HTTP request, whatever the route or outcome.

A pure ASGI wrapper (no ``BaseHTTPMiddleware``: no extra task, no body copies). On the event
loop it only counts body bytes, notes the status and the response headers, and hands one
tuple to ``telemetry.access.WRITER``; the writer thread turns it into an ``AccessRecord``.
The image endpoints leave their ``CallContext`` in the request state (``CALL_STATE``), whose
``trace`` carries the pipeline's facts (workspace, key, models, attempts, cache, cost); other
routes give their trace id in the ``x-orq-trace-id`` header.

Nothing from the query string, the headers sent by the client or either body is logged.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..telemetry.access import (
    WRITER,
    AccessRecord,
    AccessWriter,
    Raw,
    clip,
    ensure_handler,
    json_line,
    text_line,
)

CALL_STATE = "imagegate_call"  # request.state attribute: the image endpoint's CallContext
PRINCIPAL_STATE = "imagegate_principal"  # request.state attribute: who called (any route)
TRACE_HEADER = b"x-orq-trace-id"
MAX_TRACE_ID_CHARS = 64


# readiness/liveness probes are not logged (docs/configuration.md, "The access log")
PROBES = frozenset({"/health/live", "/health/ready"})


class AccessLogMiddleware:
    """Wraps the app; ``log_format`` is ``text`` or ``json``."""

    def __init__(self, app: ASGIApp, log_format: str = "text", writer: AccessWriter = WRITER):
        self.app = app
        self.writer = writer
        self.render = render_json if log_format == "json" else render_text
        ensure_handler()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":  # write queued lines before the server stops
                send = self._flush_on_shutdown(send)
            await self.app(scope, receive, send)
            return
        if scope["path"] in PROBES:  # a load balancer asks every few seconds: no line each
            await self.app(scope, receive, send)
            return
        wall, started = time.time(), time.perf_counter()
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        status = 0
        headers: Any = None
        received = sent = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            body = message.get("body")
            if body:
                received += len(body)
            return message

        async def observed_send(message: Message) -> None:
            nonlocal status, headers, sent
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                status, headers = message["status"], message.get("headers")
            await send(message)

        try:
            await self.app(scope, counted_receive, observed_send)
        except asyncio.CancelledError:
            status = status or 499
            raise
        finally:  # an exception escaping with no response: the server answers 500
            elapsed_ms = (time.perf_counter() - started) * 1000
            raw = (
                wall,
                scope["method"],
                scope.get("raw_path"),
                scope["path"],
                status or 500,
                headers,
                state,
                elapsed_ms,
                received,
                sent,
            )
            self.writer.submit((self.render, raw))

    def _flush_on_shutdown(self, send: Send) -> Send:
        writer = self.writer

        async def send_after_flush(message: Message) -> None:
            if message["type"].startswith("lifespan.shutdown"):
                writer.flush()
            await send(message)

        return send_after_flush


def record_of(raw: Raw) -> AccessRecord:
    """What the edge saw, as the fields of a line (runs in the writer thread)."""
    wall, method, raw_path, path, status, headers, state, elapsed_ms, received, sent = raw
    if raw_path:  # as sent (still percent-encoded): a decoded %0A cannot break the line
        path = raw_path.decode("ascii", "backslashreplace")
    record = AccessRecord(
        wall, clip(method), clip(path.partition("?")[0]), status, elapsed_ms, received, sent
    )
    call = state.get(CALL_STATE)
    if call is not None:
        record.trace_id, record.key_id = call.trace_id, call.api_key_id
        record.workspace = call.workspace_id
        trace = call.trace
        if trace is not None:
            record.model = _clip(trace.requested_model)
            record.served_model = _clip(trace.served_model)
            record.attempts = len(trace.attempts)
            record.cache = trace.cache.upper() if trace.cache else None
            record.cost_usd = trace.cost_usd
    else:
        principal = state.get(PRINCIPAL_STATE)
        if principal is not None:
            record.workspace, record.key_id = principal.workspace_id, principal.key_id
    if record.trace_id is None and headers:
        for name, value in headers:
            if name == TRACE_HEADER:
                record.trace_id = value[:MAX_TRACE_ID_CHARS].decode("ascii", "replace")
                break
    return record


def _clip(value: str | None) -> str | None:
    return None if value is None else clip(value)


def render_text(raw: Raw) -> str:
    return text_line(record_of(raw))


def render_json(raw: Raw) -> str:
    return json_line(record_of(raw))
