"""A raw HTTP/1.1 server that answers every request with an endless-looking body.

Why raw: aiohttp's own server will not send more than the Content-Length it declared, and the
cap tests need an upstream that lies. The body (JSON that opens a base64 string and never
closes it) is produced lazily chunk by chunk, never built in memory; ``sent`` counts what
actually went out, so a test can show the gateway stopped reading long before the end::

    with Flood("chunked") as flood:        # or "declared" (an honest, huge Content-Length)
        ...                                # or "lying" (Content-Length: 100, sends it all)
        assert flood.sent < flood.total
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Literal

Mode = Literal["chunked", "declared", "lying"]
PREFIX = b'{"created": 1, "data": [{"b64_json": "'
CHUNK = 64 * 1024


class Flood:
    def __init__(self, mode: Mode, total: int = 300 * 1024 * 1024) -> None:
        self.mode = mode
        self.total = total
        self.sent = 0
        self.requests = 0
        self.finished = False  # the whole body went out
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def providers(self, name: str = "flood") -> dict[str, dict[str, str]]:
        return {name: {"type": "openai-compatible", "base_url": f"{self.url}/v1"}}

    def _chunks(self) -> Iterator[bytes]:
        yield PREFIX
        left = self.total - len(PREFIX)
        block = b"A" * CHUNK
        while left > 0:
            piece = block if left >= CHUNK else block[:left]
            left -= len(piece)
            yield piece

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            headers = [b"HTTP/1.1 200 OK", b"Content-Type: application/json"]
            if self.mode == "chunked":
                headers.append(b"Transfer-Encoding: chunked")
            else:
                declared = self.total if self.mode == "declared" else 100
                headers.append(b"Content-Length: %d" % declared)
            writer.write(b"\r\n".join(headers) + b"\r\n\r\n")
            for piece in self._chunks():
                if self.mode == "chunked":
                    piece = b"%x\r\n%s\r\n" % (len(piece), piece)
                writer.write(piece)
                await writer.drain()
                self.sent += len(piece)
            if self.mode == "chunked":
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            self.finished = True
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def __enter__(self) -> Flood:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
