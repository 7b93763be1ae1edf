"""A fake OpenAI Images API that answers ``stream: true`` with real Server-Sent Events.

A real aiohttp server on 127.0.0.1. Each event is written (and so flushed to the socket) on
its own, as OpenAI does: ``image_generation.partial_image`` / ``image_edit.partial_image``
events, then one ``*.completed`` event per image
(https://platform.openai.com/docs/api-reference/images-streaming). Answers are scripted per
request (``Script``) so a test can hold the stream at an event until it calls ``release()``,
drop the connection, fail before streaming, send an oversize or an endless stream. Built on
the fakes' ``Recorder`` (requests, violations); what else it saw is kept for the test: the
event types it sent, whether it finished, whether the client closed the connection on it::

    with FakeOpenAIStream() as fake:
        fake.script(Script(hold_at=1))  # send the first event, then wait for release()
        ...
        fake.release()
        assert fake.finished.wait(10)
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from fakes.core import Received, Recorder, openai_error
from imagekit import png

HOLD_LIMIT_S = 30.0  # a held stream goes on by itself after this (a test that forgot release)
USAGE = {
    "input_tokens": 10,
    "output_tokens": 20,
    "total_tokens": 30,
    "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
}


@dataclass
class Script:
    """How to answer one request.

    ``status``: answer this error status as JSON instead of streaming. ``hold_at``: before
    event number ``hold_at`` (0-based), wait for ``release()``. ``drop_at``: drop the
    connection instead of sending that event. ``big_at``/``big_bytes``: that event carries
    that many bytes of base64. ``endless``: partial events without end, until the client
    leaves. ``whole``: ignore ``stream`` and answer OpenAI's JSON body. ``error_at``: send an
    ``error`` event (OpenAI's shape) instead of that event and end. ``extra``: that many more
    completed images than asked.
    """

    status: int = 200
    hold_at: int | None = None
    drop_at: int | None = None
    big_at: int | None = None
    big_bytes: int = 0
    endless: bool = False
    whole: bool = False
    error_at: int | None = None
    extra: int = 0


class FakeOpenAIStream(Recorder):
    """The fake server; ``api_key`` is the only key it accepts."""

    def __init__(self, api_key: str = "sk-upstream") -> None:
        super().__init__()
        self.api_key = api_key
        self.sent: list[str] = []  # event types written, over every request
        self.gate = threading.Event()
        self.finished = threading.Event()  # the last answer's last event was written
        self.client_left = threading.Event()  # a client closed the connection mid-stream
        self._streams: deque[Script] = deque()
        self.app.router.add_post("/v1/images/{operation}", self._handle)
        # Azure OpenAI: the deployment in the path, ``api-version``, the ``api-key`` header
        self.app.router.add_post(
            "/openai/deployments/{deployment}/images/{operation}", self._handle
        )

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        super().__exit__(*exc)

    def providers(self) -> dict[str, Any]:
        """``openai`` and ``azure`` entries pointing at this fake."""
        return {
            "openai": {"api_key": self.api_key, "base_url": self.url + "/v1"},
            "azure": {"type": "azure", "api_key": self.api_key, "base_url": self.url},
        }

    def stream(self, *scripts: Script) -> None:
        """Queue how the next requests are answered, in order (default: ``Script()``)."""
        self._streams.extend(scripts)

    def release(self) -> None:
        """Let a held stream go on."""
        self.gate.set()

    def reset(self) -> None:
        super().reset()
        self._streams.clear()
        self.sent.clear()
        for event in (self.gate, self.finished, self.client_left):
            event.clear()

    # --- the server -------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation = request.match_info["operation"]
        received = await self.record(request)
        problems: list[str] = []
        if operation == "generations":
            fields: dict[str, Any] = self.expect_json(received, problems)
        else:
            fields = self.expect_multipart(received, problems, repeatable=("image[]",))
        problems += check(received, fields, self.api_key)
        if problems:
            return self.refuse(received, problems)
        script = self._streams.popleft() if self._streams else Script()
        if script.status != 200:
            body = openai_error(f"scripted {script.status}", "server_error")
            return web.json_response(body, status=script.status)
        n = int(fields.get("n") or 1)
        if script.whole:
            data = [{"b64_json": _b64(png(i))} for i in range(n)]
            return web.json_response({"created": int(time.time()), "data": data, "usage": USAGE})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        prefix = "image_generation" if operation == "generations" else "image_edit"
        partials = int(fields.get("partial_images") or 0)
        events = [
            _event(f"{prefix}.partial_image", png(10 + i), partial_image_index=i)
            for i in range(partials)
        ]
        events += [
            _event(f"{prefix}.completed", png(i), usage=USAGE) for i in range(n + script.extra)
        ]
        index = 0
        while index < len(events) or script.endless:
            if index == script.hold_at and not await self._hold(request):
                return response
            if index == script.drop_at:
                assert request.transport is not None
                request.transport.abort()
                return response
            if index < len(events) and not script.endless:
                doc = events[index]
            else:  # endless: another partial image, forever
                doc = _event(f"{prefix}.partial_image", png(index), partial_image_index=0)
            if index == script.error_at:
                error = openai_error("scripted stream error", "server_error")
                doc = {"type": "error", **error}
                self.sent.append("error")
                await response.write(sse(doc))
                return response
            if index == script.big_at:
                doc = {**doc, "b64_json": "A" * script.big_bytes}
            self.sent.append(doc["type"])  # before the write: the client may read it first
            try:
                await response.write(sse(doc))
            except ConnectionError:
                self.client_left.set()
                return response
            index += 1
        self.finished.set()
        await response.write_eof()
        return response

    async def _hold(self, request: web.Request) -> bool:
        """Wait for ``release()``; False when the client closed the connection meanwhile."""
        deadline = time.monotonic() + HOLD_LIMIT_S
        while not self.gate.is_set() and time.monotonic() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                self.client_left.set()
                return False
            await asyncio.sleep(0.005)  # a poll interval, not a synchronisation point
        return True


def sse(doc: dict[str, Any]) -> bytes:
    """One event as OpenAI writes it: its type, then the JSON on one ``data:`` line."""
    return f"event: {doc['type']}\ndata: {json.dumps(doc)}\n\n".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _event(kind: str, png: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "b64_json": _b64(png),
        "created_at": int(time.time()),
        "size": "1024x1024",
        "quality": "high",
        "background": "opaque",
        "output_format": "png",
        **extra,
    }


def check(received: Received, fields: dict[str, Any], api_key: str) -> list[str]:
    """What OpenAI would refuse on a streamed request (or we promised not to send)."""
    problems: list[str] = []
    if "/deployments/" in received.path:  # Azure: no model in the body, the key as api-key
        if received.headers.get("api-key") != api_key or "model" in fields:
            problems.append("not Azure's auth or body")
        if not received.query.get("api-version"):
            problems.append("api-version missing")
    elif received.headers.get("Authorization") != f"Bearer {api_key}":
        problems.append("wrong Authorization")
    model = fields.get("model")
    if "/deployments/" not in received.path and (not isinstance(model, str) or "/" in model):
        problems.append(f"model {model!r}")
    if "response_format" in fields:
        problems.append("response_format sent to a gpt-image model")
    stream = fields.get("stream")
    if received.json is not None:
        partial_ok = isinstance(fields.get("partial_images", 0), int)
        stream_ok = stream is True
    else:
        partial_ok = str(fields.get("partial_images", "0")).isdigit()
        stream_ok = stream == "true"
    if not stream_ok:
        problems.append(f"stream is {stream!r}")
    if not partial_ok:
        problems.append(f"partial_images is {fields.get('partial_images')!r}")
    return problems
