"""A fault-injecting fake image provider speaking OpenAI's images wire format over real HTTP.

One server plays many providers: ``POST /<name>/v1/images/{generations,edits,variations}``,
so ``providers={"a": {"type": "openai-compatible", "base_url": fake.url + "/a/v1"}}`` makes
gateway model ``a/m1`` arrive here as provider ``a``, model ``m1``. Each model follows a script
of steps (status, delay, Retry-After, connection reset, truncated body), then answers 200 with a
tiny real PNG. Every request is recorded, with what became of it::

    with FaultyUpstream() as fake:
        fake.script("a/m1", fail(503), fail(429, retry_after="0.2"))   # then ok
        ...
        assert [r.outcome for r in fake.received("a/m1")] == ["answered"] * 3

A delay watches the connection: when the caller goes away mid-delay the request is recorded
as ``dropped`` (this is how tests prove that cancellation reaches the upstream).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from live import LiveAiohttp
from PIL import Image

OPERATIONS = ("generations", "edits", "variations")


def tiny_png(side: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (200, 60, 30)).save(buf, "PNG")
    return buf.getvalue()


PNG = tiny_png()


@dataclass(frozen=True, slots=True)
class Step:
    """What the fake does with one request (defaults: answer 200 at once)."""

    status: int = 200
    delay_s: float = 0.0
    retry_after: str | None = None
    reset: bool = False  # drop the connection (RST) without answering
    truncate: bool = False  # promise a body, send half of it, close
    message: str | None = None


def ok(delay_s: float = 0.0) -> Step:
    return Step(delay_s=delay_s)


def fail(
    status: int, *, retry_after: str | None = None, message: str | None = None, delay_s: float = 0.0
) -> Step:
    return Step(status=status, retry_after=retry_after, message=message, delay_s=delay_s)


def hang(delay_s: float) -> Step:
    """Answer 200, but only after ``delay_s`` (for per-attempt timeouts)."""
    return Step(delay_s=delay_s)


def reset() -> Step:
    return Step(reset=True)


def truncated() -> Step:
    return Step(truncate=True)


@dataclass
class Received:
    """One request as the fake saw it."""

    model: str  # "<provider name>/<model>", as the gateway names it
    operation: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    step: Step
    outcome: str = "pending"  # answered | dropped | reset | truncated | rejected
    files: list[str] = field(default_factory=list)


class FaultyUpstream:
    """The fake server; use as a context manager (a real aiohttp server in its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Step]] = {}
        self._then: dict[str, Step] = {}
        self.requests: list[Received] = []
        app = web.Application()
        app.router.add_post("/{name}/v1/images/{operation}", self._handle)
        self._live = LiveAiohttp(app)

    # --- test-side API -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._live.url

    def providers(self, *names: str) -> dict[str, dict[str, str]]:
        """``providers`` config entries pointing ``<name>/...`` models at this server."""
        return {n: {"type": "openai-compatible", "base_url": f"{self.url}/{n}/v1"} for n in names}

    def script(self, model: str, *steps: Step, then: Step | None = None) -> None:
        """Answer the next requests for ``model`` with ``steps``; afterwards with ``then``."""
        with self._lock:
            self._scripts[model] = deque(steps)
            self._then[model] = then or Step()

    def clear(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._then.clear()
            self.requests.clear()

    def received(self, model: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if model is None or r.model == model]

    def wait_for(self, predicate: Any, timeout_s: float = 3.0) -> bool:
        """Poll (from the test thread) until ``predicate()`` holds."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.01)
        return bool(predicate())

    def __enter__(self) -> FaultyUpstream:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)

    # --- server side -------------------------------------------------------------------
    def _next_step(self, model: str) -> Step:
        with self._lock:
            queue = self._scripts.get(model)
            if queue:
                return queue.popleft()
            return self._then.get(model, Step())

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], list[str], str | None]:
        """The body as OpenAI would read it; the third value names a wire-format violation."""
        operation = request.match_info["operation"]
        if operation == "generations":
            try:
                body = await request.json()
            except ValueError:
                return {}, [], "body is not JSON"
            if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
                return {}, [], "'prompt' (string) is required"
            if not isinstance(body.get("model"), str):
                return body, [], "'model' (string) is required"
            return body, [], None
        if not request.content_type.startswith("multipart/form-data"):
            return {}, [], f"images/{operation} takes multipart/form-data"
        form = await request.post()
        fields: dict[str, Any] = {}
        files: list[str] = []
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files.append(key)
            else:
                fields[key] = value
        if not isinstance(fields.get("model"), str):
            return fields, files, "'model' is required"
        if not any(f.startswith("image") for f in files):
            return fields, files, "an 'image' file is required"
        return fields, files, None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name, operation = request.match_info["name"], request.match_info["operation"]
        if operation not in OPERATIONS:
            return web.json_response({"error": {"message": "unknown operation"}}, status=404)
        body, files, violation = await self._read(request)
        model = f"{name}/{body.get('model')}"
        step = self._next_step(model) if violation is None else Step(status=400)
        rec = Received(model, operation, body, dict(request.headers), time.monotonic(), step)
        rec.files = files
        with self._lock:
            self.requests.append(rec)
        if violation is not None:
            rec.outcome = "rejected"
            return _error(400, f"fake upstream: {violation}", None)
        if step.delay_s and not await _still_connected_after(request, step.delay_s):
            rec.outcome = "dropped"
            return web.Response(status=499)  # nobody is listening any more
        if step.reset:
            rec.outcome = "reset"
            _reset(request)
            return web.Response(status=499)
        if step.truncate:
            rec.outcome = "truncated"
            return await _truncated(request, _image_body(body))
        rec.outcome = "answered"
        if step.status >= 400:
            return _error(step.status, step.message or f"fake upstream says {step.status}", step)
        return web.json_response(_image_body(body))


def _image_body(body: dict[str, Any]) -> dict[str, Any]:
    n = int(float(body.get("n") or 1))
    b64 = base64.b64encode(PNG).decode("ascii")
    return {"created": int(time.time()), "data": [{"b64_json": b64} for _ in range(n)]}


def _error(status: int, message: str, step: Step | None) -> web.Response:
    headers = {"Retry-After": step.retry_after} if step and step.retry_after else {}
    body = {"error": {"message": message, "type": "fake_error", "param": None, "code": None}}
    return web.json_response(body, status=status, headers=headers)


async def _still_connected_after(request: web.Request, delay_s: float) -> bool:
    """Sleep ``delay_s`` in small steps; False as soon as the caller has gone away."""
    loop = asyncio.get_running_loop()
    end = loop.time() + delay_s
    while (left := end - loop.time()) > 0:
        transport = request.transport
        if transport is None or transport.is_closing():
            return False
        await asyncio.sleep(min(0.01, left))
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _reset(request: web.Request) -> None:
    """Close with RST (SO_LINGER 0): the client sees a reset, not a clean close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _truncated(request: web.Request, doc: dict[str, Any]) -> web.StreamResponse:
    payload = json.dumps(doc).encode()
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(payload)
    await response.prepare(request)
    await response.write(payload[: len(payload) // 2])
    if request.transport is not None:
        request.transport.close()
    return response
