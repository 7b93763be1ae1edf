"""A provider's Server-Sent Events answer, read one event at a time with bounds.

``EventStream`` wraps an open aiohttp response whose body is ``text/event-stream`` (the
WHATWG SSE format: ``event:``/``data:`` lines, an empty line ends an event). Nothing is
buffered past the event being read: an event bigger than ``max_event_bytes`` (a partial
image is several MB of base64, so the cap is the provider response cap), more events than
``max_events``, or completed images (kept until the end, for the archive) over that same cap in
all, as for a whole answer, is a broken answer, and the response is closed at once. Every read
waits until ``deadline`` (the attempt's, on the loop clock) and no longer.

The image events are OpenAI's (``image_generation.partial_image`` / ``.completed``,
``image_edit.*``, ``error``): https://platform.openai.com/docs/api-reference/images-streaming
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import aiohttp
import orjson

from ...errors import UpstreamConnectionError, UpstreamHTTPError, UpstreamTimeout
from ...request import ImageRequest, ImageResult
from .http import map_status

MAX_EVENTS = 64  # partial images (≤ 3) and completed images (≤ 10) per answer, and slack
READ_CHUNK = 256 * 1024
Kind = Literal["partial", "completed"]


@dataclass(slots=True)
class Event:
    """One image event: its kind, its JSON document and the ``data`` bytes as received."""

    kind: Kind
    doc: dict[str, Any]
    data: bytes

    @property
    def b64(self) -> str:
        value = self.doc.get("b64_json")
        return value if isinstance(value, str) else ""


class EventStream:
    """Events of one open upstream response; ``close`` (idempotent) drops the connection."""

    def __init__(
        self,
        provider: str,
        response: aiohttp.ClientResponse,
        *,
        max_event_bytes: int,
        max_events: int = MAX_EVENTS,
    ) -> None:
        self.provider = provider
        self.response = response
        self.max_event_bytes = max_event_bytes
        self.max_events = max_events
        self.buffer = bytearray()
        self.scanned = 0  # the buffer before this holds no event boundary
        self.count = 0
        self.completed_bytes = 0
        self.ended = False

    async def next(self, deadline: float) -> Event | None:
        """The next image event, or None at the end of the answer.

        Raises ``UpstreamTimeout`` past ``deadline``, ``UpstreamHTTPError`` for an ``error``
        event and ``UpstreamConnectionError`` for a broken, oversize or endless answer.
        """
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    raw = await self._raw()
                    if raw is None:
                        return None
                    event = self._decode(raw)
                    if event is not None:
                        return event
        except TimeoutError:
            self.close()
            message = f"{self.provider}: the stream ran past the attempt's timeout"
            raise UpstreamTimeout(message) from None
        except (aiohttp.ClientError, OSError) as exc:
            self.close()
            raise UpstreamConnectionError(f"{self.provider}: broken stream: {exc}") from None
        except BaseException:
            self.close()
            raise

    async def _raw(self) -> tuple[str, bytes] | None:
        """The next event's name and data (``data:`` lines joined), or None at the end."""
        while True:
            found = _boundary(self.buffer, self.scanned)
            if found is not None:
                end, skip = found
                block = bytes(self.buffer[:end])
                del self.buffer[: end + skip]
                self.scanned = 0
                parsed = _fields(block)
                if parsed is None:  # a comment or keep-alive: no data
                    continue
                self.count += 1
                if self.count > self.max_events:
                    raise UpstreamConnectionError(
                        f"{self.provider}: stream sent more than {self.max_events} events"
                    )
                return parsed
            if len(self.buffer) > self.max_event_bytes:
                raise UpstreamConnectionError(
                    f"{self.provider}: stream event over {self.max_event_bytes} bytes"
                )
            self.scanned = max(0, len(self.buffer) - 3)  # a boundary may straddle two reads
            if self.ended:
                return None
            chunk = await self.response.content.readany()
            if not chunk:
                self.ended = True
                if self.buffer.strip():  # a last event without its empty line
                    self.buffer += b"\n\n"
                continue
            self.buffer += chunk

    def _decode(self, raw: tuple[str, bytes]) -> Event | None:
        name, data = raw
        if data.strip() == b"[DONE]":
            return None
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamConnectionError(f"{self.provider}: stream event is not JSON") from None
        if not isinstance(doc, dict):
            raise UpstreamConnectionError(f"{self.provider}: stream event is not an object")
        kind = str(doc.get("type") or name)
        if kind == "error" or isinstance(doc.get("error"), dict):
            raise _error_event(self.provider, doc)
        if kind.endswith(".partial_image"):
            return Event("partial", doc, data)
        if kind.endswith(".completed"):
            if not isinstance(doc.get("b64_json"), str) or not doc["b64_json"]:
                raise UpstreamConnectionError(f"{self.provider}: completed event has no image")
            self.completed_bytes += len(data)
            if self.completed_bytes > self.max_event_bytes:
                raise UpstreamConnectionError(
                    f"{self.provider}: completed images over {self.max_event_bytes} bytes in all"
                )
            return Event("completed", doc, data)
        return None  # an event type we do not know: skipped

    def close(self) -> None:
        """Drop the connection (the upstream sees it closed; its work is cancelled)."""
        self.ended = True
        self.buffer.clear()
        self.response.close()


def _boundary(buffer: bytearray, start: int) -> tuple[int, int] | None:
    """(end of the event, length of the separator) for the first empty line after ``start``."""
    best: tuple[int, int] | None = None
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        at = buffer.find(sep, start)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, len(sep))
    return best


def _fields(block: bytes) -> tuple[str, bytes] | None:
    """An event block's name and data, or None when it carries no data line."""
    name = ""
    data: list[bytes] = []
    for line in block.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"event":
            name = value.decode("utf-8", "replace")
        elif field == b"data":
            data.append(value)
    return (name, b"\n".join(data)) if data else None


def _error_event(provider: str, doc: dict[str, Any]) -> UpstreamHTTPError:
    """An upstream ``error`` event as a failure (a 500 unless it says otherwise)."""
    err = doc.get("error") if isinstance(doc.get("error"), dict) else doc
    assert isinstance(err, dict)
    message = str(err.get("message") or "the provider's stream reported an error")[:2000]
    code = err.get("code") or err.get("type")
    status = 500
    return UpstreamHTTPError(
        f"{provider}: {message}",
        status=status,
        code=map_status(status, message, str(code) if code else None),
    )


@runtime_checkable
class Streams(Protocol):
    """A provider that can answer a request as events (see ``SpecProvider.open_stream``)."""

    async def open_stream(
        self, model: str, request: ImageRequest
    ) -> EventStream | ImageResult | None:
        """An open event stream; an ``ImageResult`` when the upstream answered whole (it
        ignored ``stream``); None when this model or request does not stream."""
        ...
