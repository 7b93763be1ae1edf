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

import time
from typing import Any

from aiohttp import web
from fakes.core import Recorder
from imagekit import png, solid

SECRET = solid(7, (1, 2, 3))  # what the internal service holds (a real PNG)
OWN_IMAGE = png("hostile-own", 8)  # what the provider serves from its own host


class Internal(Recorder):
    """A service on loopback that answers anything with ``SECRET`` and counts every hit."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_route("*", "/{tail:.*}", self._any)

    @property
    def hits(self) -> int:
        return len(self.requests)

    @property
    def port(self) -> int:
        return self._server.port

    async def _any(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(body=SECRET, content_type="image/png")


class HostileProvider(Recorder):
    """``POST /v1/images/*`` answers ``{"created", "data": self.data}``; on its own host it
    also serves ``/own/image`` (``OWN_IMAGE``), ``/own/notimage`` (HTML labelled image/png)
    and ``/own/redirect`` (a 302 to ``self.location``)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: list[dict[str, Any]] = []
        self.location = ""
        self.app.router.add_post("/v1/images/{op}", self._images)
        self.app.router.add_get("/own/image", self._image)
        self.app.router.add_get("/own/notimage", self._notimage)
        self.app.router.add_get("/own/redirect", self._redirect)

    @property
    def calls(self) -> int:
        return len(self.received(path="/v1/images/"))

    def providers(self, name: str = "evil") -> dict[str, Any]:
        return {name: {"type": "openai-compatible", "base_url": f"{self.url}/v1"}}

    async def _images(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.json_response({"created": int(time.time()), "data": self.data})

    async def _image(self, request: web.Request) -> web.Response:
        return web.Response(body=OWN_IMAGE, content_type="image/png")

    async def _notimage(self, request: web.Request) -> web.Response:
        return web.Response(body=b"<html>not an image</html>", content_type="image/png")

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self.location)
