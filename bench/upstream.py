"""A fake OpenAI images server that costs as little CPU as possible.

The benchmark measures the gateway, so the upstream must never be the bottleneck: it is a raw
asyncio protocol over httptools (uvloop when present) that answers from pre-built bodies and
never parses multipart, it only counts the bytes.

    POST /v1/images/generations   JSON in; answer size picked by the body's ``size``
                                  (``SIZES``); ``response_format: url`` answers a URL to
                                  ``/files/<n>.png``; model ``slow-<ms>`` waits <ms> first
    POST /v1/images/edits         multipart in (counted, not parsed); small b64 answer
    POST /v1/images/variations    same
    GET  /files/<n>.png           <n> bytes of PNG-signed noise (for URL answers)
    GET  /health, GET /stats      liveness, counters

Every image answered is different (16 base64 characters carry a counter), as real images are:
a gateway that stores images content-addressed must not get away with deduplicating them.
Bodies are written as pre-built buffers around that counter, never copied per request.
``python -m bench.upstream --port 0`` prints ``READY <port>`` once it listens.
Requests on one connection are answered in order; clients here never pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import random
import re
import signal
import socket
import struct
import sys
import zlib
from typing import Any, cast

import httptools
import orjson

HOST = "127.0.0.1"
SIZES = {"256x256": 1_024, "512x512": 400_000, "1024x1024": 1_500_000}
DEFAULT_B64 = 1_024
MAX_JSON = 1024 * 1024
SLOW = re.compile(rb'"model"\s*:\s*"(?:[^"/]*/)?slow-(\d+)')
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 413: b"Payload Too Large"}
MARK_AT = 56  # base64 chars into the image (past the PNG headers) where the counter goes
Body = tuple[bytes | memoryview, ...]


def png_header(width: int = 1024, height: int = 1024) -> bytes:
    """PNG signature + IHDR chunk (33 bytes): what the gateway checks before answering."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + ihdr)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", crc)


def noise_png(n: int) -> bytes:
    """``n`` bytes with a real PNG header, then noise that does not compress (like a real
    image): the gateway checks magic bytes and dimensions, never decodes the pixels."""
    size = max(0, n - 41)
    head = png_header() + struct.pack(">I", size) + b"IDAT"  # 41 bytes, then the "pixels"
    return (head + random.Random(n).randbytes(size))[:n]


def b64_text(n: int) -> str:
    """Base64 text of about ``n`` characters (a multiple of 4)."""
    raw_len = max(4, n - n % 4) // 4 * 3
    return base64.b64encode(noise_png(raw_len)).decode("ascii")


class Bodies:
    """Pre-rendered answers, built once per size and reused for every request."""

    def __init__(self, base_url: str, *, unique: bool = True) -> None:
        self.base_url = base_url
        self.unique = unique
        self._b64: dict[int, tuple[bytes, memoryview]] = {}
        self._url: dict[int, bytes] = {}
        self._files: dict[int, bytes] = {}
        self._counter = itertools.count()
        self._salt = os.getpid().to_bytes(4, "big")

    def b64(self, n: int) -> Body:
        """A b64_json answer of ~``n`` characters; unique per call unless ``unique`` is off."""
        parts = self._b64.get(n)
        if parts is None:
            doc = {"created": 1_700_000_000, "data": [{"b64_json": b64_text(n)}]}
            whole = orjson.dumps(doc)
            cut = whole.index(b'"b64_json":"') + len(b'"b64_json":"') + MARK_AT
            parts = self._b64[n] = (whole[:cut], memoryview(whole)[cut:])
        head, rest = parts
        if not self.unique:
            return (head, rest)
        mark = base64.b64encode(next(self._counter).to_bytes(8, "big") + self._salt)
        return (head, mark, rest[len(mark) :])

    def url(self, n: int) -> bytes:
        body = self._url.get(n)
        if body is None:
            raw_len = max(4, n - n % 4) // 4 * 3
            doc = {
                "created": 1_700_000_000,
                "data": [{"url": f"{self.base_url}/files/{raw_len}.png"}],
            }
            body = self._url[n] = orjson.dumps(doc)
        return body

    def file(self, n: int) -> bytes:
        body = self._files.get(n)
        if body is None:
            body = self._files[n] = noise_png(n)
        return body


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.by_path: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class Connection(asyncio.Protocol):
    """One client connection: parse with httptools, answer from ``Bodies``."""

    def __init__(self, server: Upstream) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body = bytearray()
        self.body_len = 0
        self.pending: list[tuple[float, Body, bool]] = []
        self.busy = False

    # asyncio -------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.server.stats.bytes_in += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(400, b'{"error":{"message":"bad request"}}', keep_alive=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    # httptools -----------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = bytearray()
        self.body_len = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body_len += len(body)
        if self.url.endswith(b"/generations") and len(self.body) < MAX_JSON:
            self.body += body

    def on_message_complete(self) -> None:
        stats = self.server.stats
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        stats.requests += 1
        stats.by_path[path] = stats.by_path.get(path, 0) + 1
        keep_alive = self.parser.should_keep_alive()
        delay, status, body = self.server.answer(self.parser.get_method(), path, bytes(self.body))
        self.pending.append((delay, self._response(status, body, keep_alive), keep_alive))
        if not self.busy:
            self._next()

    # replies -------------------------------------------------------------------------------
    def _response(self, status: int, body: Body, keep_alive: bool) -> Body:
        length = sum(len(part) for part in body)
        head = (
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (
                status,
                REASONS.get(status, b"OK"),
                length,
                b"" if keep_alive else b"Connection: close\r\n",
            )
        )
        return (head, *body)

    def _next(self) -> None:
        if not self.pending:
            self.busy = False
            return
        delay, payload, keep_alive = self.pending.pop(0)
        if delay <= 0:
            self._send(payload, keep_alive)
            self._next()
            return
        self.busy = True
        stats = self.server.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)

        def fire() -> None:
            stats.in_flight -= 1
            self._send(payload, keep_alive)
            self._next()

        asyncio.get_running_loop().call_later(delay, fire)

    def _send(self, payload: Body, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.server.stats.bytes_out += sum(len(part) for part in payload)
        self.transport.writelines(payload)
        if not keep_alive:
            self.transport.close()

    def _write(self, status: int, body: bytes, keep_alive: bool) -> None:
        self._send(self._response(status, (body,), keep_alive), keep_alive)


class Upstream:
    """Routing and answers; the protocol above only moves bytes."""

    def __init__(self, latency_ms: float, *, unique: bool = True) -> None:
        self.latency_s = latency_ms / 1000.0
        self.stats = Stats()
        self.bodies = Bodies("", unique=unique)

    def answer(self, method: bytes, path: str, body: bytes) -> tuple[float, int, Body]:
        if method == b"GET":
            if path == "/health":
                return 0.0, 200, (b'{"status":"ok"}',)
            if path == "/stats":
                return 0.0, 200, (orjson.dumps(self.stats.as_dict()),)
            if path.startswith("/files/") and path.endswith(".png"):
                digits = path[len("/files/") : -len(".png")]
                if digits.isdigit() and 0 < int(digits) <= 64 * 1024 * 1024:
                    return 0.0, 200, (self.bodies.file(int(digits)),)
            return 0.0, 404, (b'{"error":{"message":"not found"}}',)
        if path.endswith("/images/generations"):
            return self._generation(body)
        if path.endswith("/images/edits") or path.endswith("/images/variations"):
            return self.latency_s, 200, self.bodies.b64(DEFAULT_B64)
        return 0.0, 404, (b'{"error":{"message":"not found"}}',)

    def _generation(self, body: bytes) -> tuple[float, int, Body]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 0.0, 400, (b'{"error":{"message":"body is not JSON"}}',)
        if not isinstance(doc, dict):
            return 0.0, 400, (b'{"error":{"message":"body is not an object"}}',)
        delay = self.latency_s
        slow = SLOW.search(body)
        if slow is not None:
            delay = int(slow.group(1)) / 1000.0
        size = SIZES.get(str(doc.get("size")), DEFAULT_B64)
        if doc.get("response_format") == "url":
            return delay, 200, (self.bodies.url(size),)
        return delay, 200, self.bodies.b64(size)


async def serve(port: int, latency_ms: float, unique: bool = True) -> None:
    upstream = Upstream(latency_ms, unique=unique)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Connection(upstream), HOST, port, backlog=8192, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    upstream.bodies.base_url = f"http://{HOST}:{bound}"
    for size in SIZES.values():  # build the answers before the first request is timed
        upstream.bodies.b64(size)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {bound}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    parser.add_argument(
        "--same-image",
        action="store_true",
        help="answer the same image every time (lets a blob store deduplicate)",
    )
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(serve(args.port, args.latency_ms, not args.same_image))
    else:
        uvloop.run(serve(args.port, args.latency_ms, not args.same_image))
    return 0


if __name__ == "__main__":
    sys.exit(main())
