"""A fake OpenAI-compatible images server that answers with URLs, base64 or data: URIs.

It is a real aiohttp server on 127.0.0.1. Images are tiny PNGs derived from the request
(prompt, size, n index, uploaded file bytes), so different requests give different bytes and
the same request the same bytes. In ``url`` mode it hosts them on its CDN, counting every
download. ``calls`` counts upstream image calls (what the cache and coalescing tests assert
on); ``requests`` keeps what each call carried::

    with ImageServer(mode="url") as fake:
        config = make_config(providers=fake.providers("urlprov"))
        ...
        assert fake.calls == 1
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

from aiohttp import web
from fakes.core import Received, Recorder, Reply, openai_error
from imagekit import png


class ImageServer(Recorder):
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
        super().__init__()
        self.mode = mode
        self.fail_status = fail_status
        self.delay_s = delay_s
        self.cdn_delay_s = img_delay_s
        self.big_image_bytes = big_image_bytes
        self.images: dict[str, bytes] = {}  # sha256 → image, in order of creation
        self.sent_b64: list[str] = []
        for op in ("generations", "edits", "variations"):
            self.app.router.add_post(f"/v1/images/{op}", self._images)

    @property
    def calls(self) -> int:
        return len(self.requests)

    def providers(self, name: str = "urlprov") -> dict[str, Any]:
        return {name: {"type": "openai-compatible", "base_url": f"{self.url}/v1"}}

    def image_bytes(self) -> list[bytes]:
        """Every image served so far (in order of creation)."""
        return list(self.images.values())

    async def _images(self, request: web.Request) -> web.StreamResponse:
        received = await self.record(request)
        if self.fail_status is not None:
            body = openai_error("fake upstream failure", "server_error")
            reply = Reply(self.fail_status, body, delay_s=self.delay_s)
        else:
            reply = Reply(delay_s=self.delay_s)
        return await self.answer(request, received, reply, lambda: self._answer(received))

    def _answer(self, received: Received) -> dict[str, Any]:
        values = {k: str(v) for k, v in received.values.items()}
        seed = "|".join(
            [received.path, values.get("prompt", ""), values.get("size", "")]
            + [hashlib.sha256(f.data).hexdigest() for f in received.files]
        )
        data = []
        for i in range(int(values.get("n", "1"))):
            image = png(f"{seed}|{i}", 32) + b"\0" * self.big_image_bytes
            self.images[hashlib.sha256(image).hexdigest()] = image
            item: dict[str, Any]
            if self.mode == "b64":
                text = base64.b64encode(image).decode()
                self.sent_b64.append(text)
                item = {"b64_json": text}
            elif self.mode == "data":
                item = {"url": "data:image/png;base64," + base64.b64encode(image).decode()}
            elif self.mode == "ftp":
                item = {"url": f"ftp://127.0.0.1/cdn/{i}.png"}
            else:
                item = {"url": self.host(image)}
            item["revised_prompt"] = f"revised: {values.get('prompt', '')}"
            data.append(item)
        return {"created": int(time.time()), "data": data}
