"""Fakes for the fetch guard: an internal service that must never be reached, and an
OpenAI-compatible provider whose answers (image URLs, base64) the test writes by hand.

Both are real aiohttp servers on 127.0.0.1, on different ports: for the gateway the
provider's port is its configured (trusted) host, the internal one is "another address"::

    with Internal() as internal, HostileProvider() as evil:
        evil.data = [{"url": internal.url + "/secret"}]
        ...
        assert internal.hits == 0
"""

from __future__ import annotations

import io
import time
from typing import Any

from aiohttp import web
from live import LiveAiohttp
from PIL import Image


def png_bytes(side: int = 8, colour: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buf, "PNG")
    return buf.getvalue()


SECRET = png_bytes(7, (1, 2, 3))  # what the internal service holds (a real PNG)


class Internal:
    """A service on loopback that answers anything with ``SECRET`` and counts every hit."""

    def __init__(self) -> None:
        self.hits = 0
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._live = LiveAiohttp(app)

    def __enter__(self) -> Internal:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)

    @property
    def url(self) -> str:
        return self._live.url

    @property
    def port(self) -> int:
        return self._live.port

    async def _any(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(body=SECRET, content_type="image/png")


class HostileProvider:
    """``POST /v1/images/*`` answers ``{"created", "data": self.data}``; on its own host it
    also serves ``/own/image`` (a PNG), ``/own/notimage`` (HTML labelled image/png) and
    ``/own/redirect`` (a 302 to ``self.location``)."""

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []
        self.location = ""
        self.calls = 0
        app = web.Application()
        app.router.add_post("/v1/images/{op}", self._images)
        app.router.add_get("/own/image", self._image)
        app.router.add_get("/own/notimage", self._notimage)
        app.router.add_get("/own/redirect", self._redirect)
        self._live = LiveAiohttp(app)

    def __enter__(self) -> HostileProvider:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)

    @property
    def url(self) -> str:
        return self._live.url

    def providers(self, name: str = "evil") -> dict[str, Any]:
        return {name: {"type": "openai-compatible", "base_url": f"{self.url}/v1"}}

    async def _images(self, request: web.Request) -> web.Response:
        self.calls += 1
        await request.read()
        return web.json_response({"created": int(time.time()), "data": self.data})

    async def _image(self, request: web.Request) -> web.Response:
        return web.Response(body=png_bytes(), content_type="image/png")

    async def _notimage(self, request: web.Request) -> web.Response:
        return web.Response(body=b"<html>not an image</html>", content_type="image/png")

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self.location)
