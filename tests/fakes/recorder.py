"""Shared plumbing for the fakes of Stability, fal, Bedrock, Replicate and BFL.

Each fake is a real aiohttp server on 127.0.0.1 that speaks one provider's documented wire
format. ``FakeUpstream`` records what arrived (``seen``), turns every breach of that format
into a ``violations`` entry answered with a 400, replays scripted ``Reply`` values before the
normal answer, and hosts result images at ``/cdn/<name>.png`` like a provider CDN::

    with FakeBFL() as fake:
        fake.script(Reply(503, {"detail": "overloaded"}))
        ...
        assert fake.violations == []
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from live import LiveAiohttp
from PIL import Image


def png(seed: str, side: int = 32, fmt: str = "PNG") -> bytes:
    """A small real image whose colour depends on ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (digest[0], digest[1], digest[2])).save(buf, fmt)
    return buf.getvalue()


def image_of(raw: bytes) -> Image.Image | None:
    """The decoded image, or None when ``raw`` is not one."""
    try:
        img = Image.open(io.BytesIO(raw))
        img.load()
        return img
    except Exception:
        return None


def decode_b64_image(value: Any) -> Image.Image | None:
    """A base64 string (no ``data:`` prefix) holding an image, else None."""
    if not isinstance(value, str) or value.startswith("data:"):
        return None
    try:
        return image_of(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None


def decode_data_uri(value: Any) -> Image.Image | None:
    """A ``data:image/...;base64,`` URI holding an image, else None."""
    if not isinstance(value, str) or not value.startswith("data:image/"):
        return None
    header, _, payload = value.partition(",")
    if not header.endswith(";base64"):
        return None
    return decode_b64_image(payload)


@dataclass
class Reply:
    """A scripted answer: status, JSON body (or raw bytes), headers, delay before answering."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    """One request as the fake saw it on the wire."""

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    json: Any = None
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, tuple[str | None, str | None, bytes]] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


class FakeUpstream:
    """Base of the five fakes: recording, scripting, violations, image hosting."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.violations: list[str] = []
        self.downloads = 0
        self._scripts: dict[str | None, deque[Reply]] = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._ids = itertools.count(1)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_get("/cdn/{name}", self._cdn)
        self._server = LiveAiohttp(self.app)

    def __enter__(self) -> FakeUpstream:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self._server.url

    # --- for tests ------------------------------------------------------------------------
    def script(self, *replies: Reply, key: str | None = None) -> None:
        """Queue replies for ``key`` (a model, or a stage such as ``"result"``), or any."""
        self._scripts.setdefault(key, deque()).extend(replies)

    def requests(self, method: str | None = None, contains: str = "") -> list[Seen]:
        return [
            s for s in self.seen if (method is None or s.method == method) and contains in s.path
        ]

    # --- for subclasses -------------------------------------------------------------------
    def next_id(self, prefix: str = "job") -> str:
        return f"{prefix}-{next(self._ids)}"

    def scripted(self, *keys: str | None, any_key: bool = True) -> Reply | None:
        """The next reply queued for one of ``keys`` (then for any, unless ``any_key`` False)."""
        for key in (*keys, None) if any_key else keys:
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft()
        return None

    def host(self, data: bytes, content_type: str = "image/png") -> str:
        """Serve ``data`` like a CDN; returns its absolute URL."""
        ext = content_type.split("/")[-1]
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{ext}"
        self._files[name] = (data, content_type)
        return f"{self.url}/cdn/{name}"

    async def record(self, request: web.Request) -> Seen:
        body = await request.read()
        seen = Seen(
            request.method,
            request.path,
            request.raw_path,
            dict(request.query),
            dict(request.headers),
            body,
        )
        self.seen.append(seen)
        return seen

    @staticmethod
    def parse_json(seen: Seen, problems: list[str]) -> dict[str, Any]:
        if not seen.headers.get("Content-Type", "").startswith("application/json"):
            problems.append(f"content type {seen.headers.get('Content-Type')!r}, expected JSON")
        try:
            doc = json.loads(seen.body)
        except ValueError:
            problems.append("body is not JSON")
            return {}
        if not isinstance(doc, dict):
            problems.append("body is not a JSON object")
            return {}
        seen.json = doc
        return doc

    @staticmethod
    async def parse_multipart(request: web.Request, seen: Seen, problems: list[str]) -> None:
        """Multipart parts into ``seen.fields``/``seen.files`` (reads the stream)."""
        if request.content_type != "multipart/form-data":
            problems.append(f"content type {request.content_type!r}, expected multipart")
            return
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            data = bytes(await part.read(decode=False))
            name = part.name or ""
            if part.filename is not None:
                if name in seen.files:
                    problems.append(f"file part {name!r} sent twice")
                seen.files[name] = (part.filename, part.headers.get("Content-Type"), data)
            else:
                seen.fields.setdefault(name, []).append(data.decode("utf-8"))
        for name, values in seen.fields.items():
            if len(values) > 1:
                problems.append(f"field {name!r} sent {len(values)} times")

    def violation(self, where: str, problems: list[str], body: Any) -> web.Response:
        self.violations.extend(f"{where}: {p}" for p in problems)
        return web.json_response(body, status=400)

    @staticmethod
    async def reply(reply: Reply) -> web.Response:
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if isinstance(reply.body, bytes):
            return web.Response(body=reply.body, status=reply.status, headers=reply.headers)
        return web.json_response(reply.body or {}, status=reply.status, headers=reply.headers)

    async def _cdn(self, request: web.Request) -> web.Response:
        found = self._files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404)
        self.downloads += 1
        return web.Response(body=found[0], content_type=found[1])


def answer_images(body: dict[str, Any]) -> list[Image.Image]:
    """The images of a gateway answer ``{created, data}``, whichever form each item took."""
    import httpx

    images: list[Image.Image] = []
    for item in body["data"]:
        if "b64_json" in item:
            raw = base64.b64decode(item["b64_json"])
        elif item["url"].startswith("data:"):
            raw = base64.b64decode(item["url"].partition(",")[2])
        else:
            raw = httpx.get(item["url"], timeout=5).content
        img = image_of(raw)
        assert img is not None, f"answer item is not an image: {str(item)[:80]}"
        images.append(img)
    return images


def upload(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()
