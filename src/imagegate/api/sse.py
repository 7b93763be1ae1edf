"""Server-Sent Events out: the wire encoding and a response that stops when the client leaves.

Each event is written as soon as the pipeline yields it (one ``http.response.body`` message
per event: nothing is held back or joined). A watcher waits for ``http.disconnect`` meanwhile
and cancels the sending task, so a client that goes away mid-stream stops the upstream read
at once, not at the next write (the pipeline then drops the provider's connection and the
trace records 499).
"""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..streamed import StreamedResponse, StreamEvent
from .disconnect import unless_disconnected

log = logging.getLogger("imagegate.api")
MEDIA_TYPE = "text/event-stream"


def encode(event: StreamEvent) -> bytes:
    """``event: <type>`` then one ``data:`` line per line of the data, then an empty line."""
    head = b"event: " + event.type.encode("utf-8", "replace") + b"\n"
    if b"\n" not in event.data and b"\r" not in event.data:  # the usual case: one JSON line
        return head + b"data: " + event.data + b"\n\n"
    lines = event.data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return head + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"


class EventStreamResponse(Response):
    """A 200 ``text/event-stream`` answer that sends ``streamed``'s events as they come."""

    media_type = MEDIA_TYPE

    def __init__(self, streamed: StreamedResponse) -> None:
        self.streamed = streamed
        self.status_code = 200
        self.background = None
        headers = {**streamed.headers(), "cache-control": "no-cache", "x-accel-buffering": "no"}
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await unless_disconnected(self._send_all(send), receive, self.streamed.trace_id)
        except OSError:  # the connection broke under a write
            log.info("client left the stream of trace %s", self.streamed.trace_id)
        finally:
            await self.streamed.aclose()

    async def _send_all(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for event in self.streamed.events:
            await send({"type": "http.response.body", "body": encode(event), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
