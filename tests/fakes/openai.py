"""A fake OpenAI Images API: a real aiohttp server on 127.0.0.1 that checks the wire format.

It answers like OpenAI (``{created, data, usage?}``), records every request it received in
``requests`` and every wire-format violation in ``violations`` (a violation is also answered
with a 400 so the caller sees it). Replies can be scripted per model, e.g. for retry tests::

    with FakeOpenAI() as fake:
        fake.script(Reply(429, retry_after="0"), model="gpt-image-1")
        config = make_config(providers=fake.providers())
        ...
        assert fake.violations == []
        assert fake.requests[0].json["model"] == "gpt-image-1"
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import BodyPartReader, web
from live import LiveAiohttp
from PIL import Image

GEN_FIELDS = frozenset(
    {"model", "prompt", "n", "size", "quality", "style", "background", "moderation",
     "output_format", "output_compression", "response_format", "user", "partial_images",
     "stream"}
)  # fmt: skip
EDIT_FIELDS = frozenset(
    {"model", "prompt", "n", "size", "quality", "background", "output_format",
     "output_compression", "response_format", "user", "input_fidelity"}
)  # fmt: skip
VARIATION_FIELDS = frozenset({"model", "n", "size", "response_format", "user"})
INT_FIELDS = ("n", "output_compression")
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"RIFF", "image/webp"),
)  # fmt: skip


def tiny_png(index: int = 0, side: int = 16) -> bytes:
    """A small valid PNG whose colour depends on ``index``."""
    buf = io.BytesIO()
    Image.new("RGB", (side, side), ((40 * index) % 256, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def fetch_image(url: str) -> bytes:
    """The bytes behind an image URL the gateway answered (a ``data:`` URI or http(s))."""
    if url.startswith("data:"):
        return base64.b64decode(url.partition(",")[2])
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.content


@dataclass
class ReceivedFile:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Received:
    """One request as the fake saw it on the wire."""

    operation: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)

    @property
    def model(self) -> str | None:
        if self.json is not None:
            return self.json.get("model")
        values = self.fields.get("model")
        return values[0] if values else None

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    """A scripted answer. ``body`` None means OpenAI's normal success body."""

    status: int = 200
    body: Any = None
    retry_after: str | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


GATEWAY_KEY = "sk-gateway-test"  # the gateway API key the shared SDK fixtures configure


def next_reply(scripts: dict[str | None, deque[Reply]], key: str | None) -> Reply:
    """The next scripted reply for ``key`` (model or deployment), else for any request."""
    for k in (key, None):
        queue = scripts.get(k)
        if queue:
            return queue.popleft()
    return Reply()


async def read_json(request: web.Request, received: Received, problems: list[str]) -> None:
    """Record a JSON object body on ``received``; wire problems go to ``problems``."""
    if request.content_type != "application/json":
        problems.append(f"content type {request.content_type!r}, expected application/json")
    try:
        doc = await request.json()
    except ValueError:
        problems.append("body is not JSON")
        return
    if not isinstance(doc, dict):
        problems.append("body is not a JSON object")
        return
    received.json = doc


async def read_multipart(request: web.Request, received: Received, problems: list[str]) -> None:
    """Record multipart text fields and files on ``received``."""
    if request.content_type != "multipart/form-data":
        problems.append(f"content type {request.content_type!r}, expected multipart")
        return
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        assert isinstance(part, BodyPartReader)
        data = bytes(await part.read(decode=False))
        name = part.name or ""
        if part.filename is not None:
            content_type = part.headers.get("Content-Type")
            received.files.append(ReceivedFile(name, part.filename, content_type, data))
        else:
            received.fields.setdefault(name, []).append(data.decode("utf-8"))


class FakeOpenAI:
    """The fake server. ``api_key`` is the only key it accepts."""

    def __init__(self, api_key: str = "sk-upstream") -> None:
        self.api_key = api_key
        self.requests: list[Received] = []
        self.violations: list[str] = []
        self._scripts: dict[str | None, deque[Reply]] = {}
        self._files: dict[str, bytes] = {}
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_post("/v1/images/{operation}", self._handle)
        app.router.add_get("/files/{name}", self._file)
        self._server = LiveAiohttp(app)

    # --- lifecycle and helpers for tests ------------------------------------------------
    def __enter__(self) -> FakeOpenAI:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self._server.url

    def providers(self) -> dict[str, Any]:
        """The ``providers`` config entry that points the gateway at this fake."""
        return {"openai": {"api_key": self.api_key, "base_url": self.url + "/v1"}}

    def script(self, *replies: Reply, model: str | None = None) -> None:
        """Queue replies for ``model`` (without ``openai/``), or for any model when None."""
        self._scripts.setdefault(model, deque()).extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self.violations.clear()
        self._scripts.clear()

    # --- the server ---------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation = request.match_info["operation"]
        received = Received(operation, request.path, dict(request.headers))
        problems: list[str] = []
        if operation not in ("generations", "edits", "variations"):
            return web.json_response({"error": {"message": "not found"}}, status=404)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            problems.append(f"Authorization is {request.headers.get('Authorization')!r}")
        if operation == "generations":
            await read_json(request, received, problems)
        else:
            await read_multipart(request, received, problems)
        self.requests.append(received)
        problems += check(received)
        if problems:
            self.violations.extend(f"{operation}: {p}" for p in problems)
            message = "fake openai wire violation: " + "; ".join(problems)
            error = {"message": message, "type": "invalid_request_error", "param": None}
            body = {"error": {**error, "code": None}}
            return web.json_response(body, status=400)
        reply = self._next_reply(received.model)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        headers = dict(reply.headers)
        if reply.retry_after is not None:
            headers["Retry-After"] = reply.retry_after
        body = reply.body if reply.body is not None else self._success(received, request)
        return web.json_response(body, status=reply.status, headers=headers)

    async def _file(self, request: web.Request) -> web.Response:
        data = self._files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png")

    def _next_reply(self, model: str | None) -> Reply:
        return next_reply(self._scripts, model)

    def _success(self, received: Received, request: web.Request) -> dict[str, Any]:
        model = received.model or ""
        fields = received.json if received.json is not None else {
            k: v[0] for k, v in received.fields.items()
        }  # fmt: skip
        n = int(fields.get("n") or 1)
        gpt_image = model.startswith("gpt-image")
        as_url = not gpt_image and fields.get("response_format", "url") == "url"
        data: list[dict[str, Any]] = []
        for i in range(n):
            png = tiny_png(i)
            if as_url:
                name = hashlib.sha256(png).hexdigest()[:16] + ".png"
                self._files[name] = png
                item: dict[str, Any] = {"url": f"{self.url}/files/{name}"}
            else:
                item = {"b64_json": base64.b64encode(png).decode()}
            if model == "dall-e-3":
                item["revised_prompt"] = f"revised: {fields.get('prompt')}"
            data.append(item)
        body: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image:
            body["usage"] = {
                "input_tokens": 10, "output_tokens": 20 * n, "total_tokens": 10 + 20 * n,
                "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
            }  # fmt: skip
            body["output_format"] = fields.get("output_format", "png")
            body["size"] = fields.get("size", "1024x1024")
            body["quality"] = fields.get("quality", "high")
        return body


def check(received: Received) -> list[str]:
    """Everything about the request OpenAI would reject or we promised not to send."""
    problems: list[str] = []
    op = received.operation
    if received.json is not None:
        keys = set(received.json)
        values: dict[str, Any] = received.json
        allowed = GEN_FIELDS
    else:
        keys = set(received.fields)
        values = {k: v[0] for k, v in received.fields.items()}
        allowed = EDIT_FIELDS if op == "edits" else VARIATION_FIELDS
        for name, vals in received.fields.items():
            if len(vals) > 1:
                problems.append(f"text field {name!r} sent {len(vals)} times")
    if op == "generations" and received.json is None:
        return problems  # already reported
    unknown = keys - allowed
    if unknown:
        problems.append(f"unknown parameters {sorted(unknown)}")
    model = values.get("model")
    if not isinstance(model, str) or not model:
        problems.append("model missing")
    elif "/" in model:
        problems.append(f"model {model!r} still carries a provider prefix")
    elif model.startswith("gpt-image") and "response_format" in keys:
        problems.append("response_format sent to a gpt-image model")
    if op != "variations" and not isinstance(values.get("prompt"), str):
        problems.append("prompt missing")
    for name in INT_FIELDS:
        if name in values and not _is_int(values[name], text=received.json is None):
            problems.append(f"{name} is {values[name]!r}, not an integer")
    if op != "generations":
        problems += _check_files(op, received.files)
    return problems


def _is_int(value: Any, *, text: bool) -> bool:
    if text:
        return isinstance(value, str) and value.isdigit()
    return isinstance(value, int) and not isinstance(value, bool)


def _check_files(op: str, files: list[ReceivedFile]) -> list[str]:
    problems: list[str] = []
    names = [f.field for f in files]
    images = [f for f in files if f.field in ("image", "image[]")]
    if set(names) - {"image", "image[]", "mask"}:
        problems.append(f"unexpected file parts {names}")
    if not images:
        problems.append("no image file part")
    if names.count("image") > 1 or ("image" in names and "image[]" in names):
        problems.append(f"several images must all be sent as 'image[]', got {names}")
    if names.count("image[]") == 1:
        problems.append("a single image must be sent as 'image'")
    if op == "variations" and (len(images) != 1 or "mask" in names):
        problems.append(f"variations take exactly one image, got {names}")
    if names.count("mask") > 1:
        problems.append("more than one mask")
    for f in files:
        mime = next((m for magic, m in MAGIC if f.data.startswith(magic)), None)
        if mime is None:
            problems.append(f"{f.field}: bytes are not an image")
        elif f.content_type != mime:
            problems.append(f"{f.field}: content type {f.content_type!r} but bytes are {mime}")
        if not f.filename or "." not in f.filename:
            problems.append(f"{f.field}: filename {f.filename!r} has no extension")
    return problems
