"""A fake OpenAI Images API: a real aiohttp server on 127.0.0.1 that checks the wire format.

It answers like OpenAI (``{created, data, usage?}``), records every request it received in
``requests`` and every wire-format violation in ``violations`` (a violation is also answered
with a 400 so the caller sees it). Replies can be scripted per model, e.g. for retry tests::

    with FakeOpenAI() as fake:
        fake.script(Reply(429, retry_after="0"), key="gpt-image-1")
        config = make_config(providers=fake.providers())
        ...
        assert fake.violations == []
        assert fake.requests[0].json["model"] == "gpt-image-1"
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
from aiohttp import web
from fakes.core import Received, ReceivedFile, Recorder, Reply
from imagekit import png

__all__ = ["GATEWAY_KEY", "FakeOpenAI", "Received", "Reply", "fetch_image", "png"]

GEN_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "n",
        "size",
        "quality",
        "style",
        "background",
        "moderation",
        "output_format",
        "output_compression",
        "response_format",
        "user",
        "partial_images",
        "stream",
    }
)
EDIT_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "n",
        "size",
        "quality",
        "background",
        "output_format",
        "output_compression",
        "response_format",
        "user",
        "input_fidelity",
    }
)
VARIATION_FIELDS = frozenset({"model", "n", "size", "response_format", "user"})
INT_FIELDS = ("n", "output_compression")
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"RIFF", "image/webp"),
)
GATEWAY_KEY = "sk-gateway-test"  # the gateway API key the shared SDK fixtures configure


def fetch_image(url: str) -> bytes:
    """The bytes behind an image URL the gateway answered (a ``data:`` URI or http(s))."""
    if url.startswith("data:"):
        return base64.b64decode(url.partition(",")[2])
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.content


class FakeOpenAI(Recorder):
    """The fake server. ``api_key`` is the only key it accepts; scripted replies are keyed
    by model (without ``openai/``)."""

    def __init__(self, api_key: str = "sk-upstream") -> None:
        super().__init__(max_body=200 * 1024 * 1024)
        self.api_key = api_key
        self.app.router.add_post("/v1/images/{operation}", self._handle)

    def providers(self) -> dict[str, Any]:
        """The ``providers`` config entry that points the gateway at this fake."""
        return {"openai": {"api_key": self.api_key, "base_url": self.url + "/v1"}}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation = request.match_info["operation"]
        if operation not in ("generations", "edits", "variations"):
            return web.json_response({"error": {"message": "not found"}}, status=404)
        received = await self.record(request)
        problems: list[str] = []
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            problems.append(f"Authorization is {request.headers.get('Authorization')!r}")
        if operation == "generations":
            self.expect_json(received, problems)
        else:
            self.expect_multipart(received, problems, repeatable={"image", "image[]", "mask"})
        problems += check(operation, received)
        return await self.respond(
            request, received, problems, lambda: self._success(received), where=operation
        )

    def _success(self, received: Received) -> dict[str, Any]:
        model = received.model or ""
        fields = received.values
        n = int(fields.get("n") or 1)
        gpt_image = model.startswith("gpt-image")
        as_url = not gpt_image and fields.get("response_format", "url") == "url"
        data: list[dict[str, Any]] = []
        for i in range(n):
            image = png(i)
            item: dict[str, Any] = (
                {"url": self.host(image)}
                if as_url
                else {"b64_json": base64.b64encode(image).decode()}
            )
            if model == "dall-e-3":
                item["revised_prompt"] = f"revised: {fields.get('prompt')}"
            data.append(item)
        body: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image:
            body["usage"] = {
                "input_tokens": 10,
                "output_tokens": 20 * n,
                "total_tokens": 10 + 20 * n,
                "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
            }
            body["output_format"] = fields.get("output_format", "png")
            body["size"] = fields.get("size", "1024x1024")
            body["quality"] = fields.get("quality", "high")
        return body


def check(op: str, received: Received) -> list[str]:
    """Everything about the request OpenAI would reject or we promised not to send."""
    problems: list[str] = []
    if op == "generations" and not isinstance(received.json, dict):
        return problems  # already reported
    values = received.values
    keys = set(values)
    allowed = {"generations": GEN_FIELDS, "edits": EDIT_FIELDS}.get(op, VARIATION_FIELDS)
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
    if isinstance(model, str):
        problems += model_rules(model, values)
    if op != "variations" and not isinstance(values.get("prompt"), str):
        problems.append("prompt missing")
    for name in INT_FIELDS:
        if name in values and not _is_int(values[name], text=op != "generations"):
            problems.append(f"{name} is {values[name]!r}, not an integer")
    if op != "generations":
        problems += _check_files(op, received.files)
    return problems


# What each family takes, per the parameter docstrings of openai-python's resources/images.py
# (https://github.com/openai/openai-python): OpenAI answers 400 to anything else.
GPT_IMAGE_ONLY = frozenset(
    {"background", "moderation", "output_format", "output_compression", "input_fidelity"}
)
QUALITIES = {
    "dall-e-2": {"standard"},
    "dall-e-3": {"standard", "hd"},
    "gpt-image": {"low", "medium", "high", "auto"},
}


def model_rules(model: str, values: dict[str, Any]) -> list[str]:
    """Parameters ``model`` does not take, or takes with other values."""
    family = "gpt-image" if model.startswith("gpt-image") else model
    if family not in QUALITIES:
        return []  # a model the fake does not know: no rules
    problems = []
    if family != "gpt-image":
        problems += [f"{name} sent to {model}" for name in sorted(GPT_IMAGE_ONLY & set(values))]
    if "style" in values and family != "dall-e-3":
        problems.append(f"style sent to {model}")
    if "quality" in values and values["quality"] not in QUALITIES[family]:
        problems.append(f"quality {values['quality']!r} sent to {model}")
    if model.startswith("gpt-image-1-mini") and "input_fidelity" in values:
        problems.append(f"input_fidelity sent to {model}")
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
