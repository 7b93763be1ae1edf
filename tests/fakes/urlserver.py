"""A fake OpenAI-compatible images server that answers with URLs, base64 or data: URIs.

It is a real aiohttp server on 127.0.0.1. Images are tiny PNGs derived from the request
(prompt, n index, uploaded file bytes), so different requests give different bytes and the
same request the same bytes. In ``url`` mode it hosts them at ``/img/<name>.png`` like a
provider's CDN, counting every download. ``calls`` counts upstream image calls (what the cache
and coalescing tests assert on); ``received`` keeps what each call carried::

    with ImageServer(mode="url") as fake:
        config = make_config(providers=fake.providers("urlprov"))
        ...
        assert fake.calls == 1
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from live import LiveAiohttp
from PIL import Image


def png_for(seed: str, side: int = 32) -> bytes:
    """A small PNG whose colours depend on ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    img = Image.new("RGB", (side, side), (digest[0], digest[1], digest[2]))
    img.putpixel((0, 0), (digest[3], digest[4], digest[5]))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@dataclass
class Call:
    path: str
    fields: dict[str, str]
    files: list[tuple[str, str]] = field(default_factory=list)  # (field, sha256 of bytes)


class ImageServer:
    """``mode``: ``url`` | ``b64`` | ``data`` | ``ftp`` (a URL the gateway must refuse)."""

    def __init__(
        self,
        mode: str = "url",
        *,
        fail_status: int | None = None,
        delay_s: float = 0.0,
        img_delay_s: float = 0.0,
        big_image_bytes: int = 0,
    ) -> None:
        self.mode = mode
        self.fail_status = fail_status
        self.delay_s = delay_s
        self.img_delay_s = img_delay_s
        self.big_image_bytes = big_image_bytes
        self.images: dict[str, bytes] = {}
        self.received: list[Call] = []
        self.downloads = 0
        self.sent_b64: list[str] = []
        self._lock = threading.Lock()
        self._live = LiveAiohttp(self._app())

    # --- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> ImageServer:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)

    @property
    def url(self) -> str:
        return self._live.url

    @property
    def calls(self) -> int:
        return len(self.received)

    def providers(self, name: str = "urlprov") -> dict[str, Any]:
        return {name: {"type": "openai-compatible", "base_url": f"{self.url}/v1"}}

    # --- handlers ------------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for op in ("generations", "edits", "variations"):
            app.router.add_post(f"/v1/images/{op}", self._images)
        app.router.add_get("/img/{name}", self._img)
        return app

    async def _read(self, request: web.Request) -> Call:
        if request.content_type == "application/json":
            doc = await request.json()
            return Call(request.path, {k: str(v) for k, v in doc.items()})
        call = Call(request.path, {})
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            assert isinstance(part, BodyPartReader)
            data = await part.read()
            if part.filename is not None:
                call.files.append((part.name or "", hashlib.sha256(data).hexdigest()))
            else:
                call.fields[part.name or ""] = data.decode()
        return call

    async def _images(self, request: web.Request) -> web.Response:
        call = await self._read(request)
        with self._lock:
            self.received.append(call)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_status is not None:
            body = {"error": {"message": "fake upstream failure", "type": "server_error"}}
            return web.json_response(body, status=self.fail_status)
        n = int(call.fields.get("n", "1"))
        seed_base = "|".join(
            [call.path, call.fields.get("prompt", ""), call.fields.get("size", "")]
            + [sha for _, sha in call.files]
        )
        data = []
        for i in range(n):
            png = png_for(f"{seed_base}|{i}")
            if self.big_image_bytes:
                png = png + b"\0" * self.big_image_bytes
            name = hashlib.sha256(png).hexdigest()[:20]
            self.images[name] = png
            item: dict[str, Any]
            if self.mode == "b64":
                text = base64.b64encode(png).decode()
                self.sent_b64.append(text)
                item = {"b64_json": text}
            elif self.mode == "data":
                item = {"url": "data:image/png;base64," + base64.b64encode(png).decode()}
            elif self.mode == "ftp":
                item = {"url": f"ftp://127.0.0.1/img/{name}.png"}
            else:
                item = {"url": f"http://{request.host}/img/{name}.png"}
            item["revised_prompt"] = f"revised: {call.fields.get('prompt', '')}"
            data.append(item)
        return web.json_response({"created": int(time.time()), "data": data})

    async def _img(self, request: web.Request) -> web.Response:
        self.downloads += 1
        if self.img_delay_s:
            await asyncio.sleep(self.img_delay_s)
        name = request.match_info["name"].removesuffix(".png")
        png = self.images.get(name)
        if png is None:
            return web.Response(status=404)
        return web.Response(body=png, content_type="image/png")

    def image_bytes(self) -> list[bytes]:
        """Every image served so far (in order of creation)."""
        return list(self.images.values())
