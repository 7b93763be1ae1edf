"""Shared plumbing for the fake upstreams of Azure, Google, Vertex, Together, xAI and Recraft.

A fake is a real aiohttp server on 127.0.0.1. It records every request (``requests``), turns
every breach of the provider's documented wire format into a ``violations`` entry answered
with a 400, and replays scripted ``Reply`` values (keyed by model or deployment) before its
normal success body::

    with FakeXAI() as fake:
        fake.script(Reply(429, {"error": "slow down"}, retry_after="0"))
        ...
        assert fake.violations == []
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx
from aiohttp import web
from fakes.openai import Received, ReceivedFile, Reply, next_reply, read_json, read_multipart
from live import LiveAiohttp
from PIL import Image

__all__ = [
    "Received", "ReceivedFile", "Reply", "ScriptedFake", "answered_images", "decode_image",
    "edit", "error_of", "generate", "image_bytes",
]  # fmt: skip


def image_bytes(fmt: str = "PNG", index: int = 0, size: tuple[int, int] = (16, 16)) -> bytes:
    """A tiny real image in ``fmt`` whose colour depends on ``index``."""
    buf = io.BytesIO()
    Image.new("RGB", size, ((50 * index) % 256, 90, 160)).save(buf, fmt)
    return buf.getvalue()


def decode_image(b64: Any, what: str, problems: list[str]) -> Image.Image | None:
    """Decode base64 image data sent upstream; record why it is not one."""
    if not isinstance(b64, str) or not b64:
        problems.append(f"{what}: no base64 data")
        return None
    try:
        raw = base64.b64decode(b64, validate=True)
        img = Image.open(io.BytesIO(raw))
        img.load()
    except (binascii.Error, ValueError, OSError):
        problems.append(f"{what}: not a base64-encoded image")
        return None
    return img


def decode_data_uri(uri: Any, what: str, problems: list[str]) -> Image.Image | None:
    if not isinstance(uri, str) or not uri.startswith("data:image/") or ";base64," not in uri:
        problems.append(f"{what}: expected a data:image/...;base64 URI")
        return None
    return decode_image(uri.split(",", 1)[1], what, problems)


class ScriptedFake:
    """Base class: subclasses add routes to ``self.app`` in ``__init__``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.violations: list[str] = []
        self._scripts: dict[str | None, deque[Reply]] = {}
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self._server: LiveAiohttp | None = None

    def __enter__(self) -> ScriptedFake:
        self._server = LiveAiohttp(self.app)
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.__exit__(*exc)

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    def script(self, *replies: Reply, key: str | None = None) -> None:
        """Queue replies for ``key`` (model or deployment), or for any request when None."""
        self._scripts.setdefault(key, deque()).extend(replies)

    def _next_reply(self, key: str | None) -> Reply:
        return next_reply(self._scripts, key)

    read_json = staticmethod(read_json)
    read_multipart = staticmethod(read_multipart)

    async def respond(
        self,
        received: Received,
        problems: list[str],
        key: str | None,
        success: Callable[[], Any],
    ) -> web.Response:
        """Record the request; answer a violation, a scripted reply, or ``success()``."""
        self.requests.append(received)
        if problems:
            self.violations.extend(f"{received.path}: {p}" for p in problems)
            body = {"error": {"message": "fake wire violation: " + "; ".join(problems)}}
            return web.json_response(body, status=400)
        reply = self._next_reply(key)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        headers = dict(reply.headers)
        if reply.retry_after is not None:
            headers["Retry-After"] = reply.retry_after
        body = reply.body
        if body is None:
            body = success() if reply.status < 400 else {"error": {"message": "scripted"}}
        return web.json_response(body, status=reply.status, headers=headers)


# --- driving the gateway over HTTP -------------------------------------------------------


def generate(gateway_url: str, **body: Any) -> httpx.Response:
    """``POST /v2/router/images/generations`` with a JSON body."""
    return httpx.post(f"{gateway_url}/v2/router/images/generations", json=body, timeout=30)


def edit(
    gateway_url: str,
    images: list[bytes],
    mask: bytes | None = None,
    operation: str = "edits",
    **fields: Any,
) -> httpx.Response:
    """``POST /v2/router/images/edits`` (or variations) as multipart, like the OpenAI SDK."""
    name = "image[]" if len(images) > 1 else "image"
    files: list[tuple[str, tuple[str, bytes, str]]] = [
        (name, (f"in{i}.png", data, "image/png")) for i, data in enumerate(images)
    ]
    if mask is not None:
        files.append(("mask", ("mask.png", mask, "image/png")))
    data = {k: str(v) for k, v in fields.items()}
    return httpx.post(
        f"{gateway_url}/v2/router/images/{operation}", data=data, files=files, timeout=30
    )


def answered_images(response: httpx.Response) -> list[Image.Image]:
    """The images of a 200 answer (b64_json), decoded."""
    assert response.status_code == 200, response.text
    out = []
    for item in response.json()["data"]:
        img = Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))
        img.load()
        out.append(img)
    return out


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    error: dict[str, Any] = body["error"]
    return error
