"""A fake Stability AI REST v2beta (https://platform.stability.ai/docs/api-reference).

``POST /v2beta/stable-image/{generate|edit|control}/{name}`` with ``Authorization: Bearer``,
``multipart/form-data`` (even without files) and ``Accept: image/*`` (raw image, ``finish-reason``
and ``seed`` headers) or ``application/json`` (``{image, finish_reason, seed}``). Each
endpoint's fields are checked as documented; ``filtered`` makes the next answer
``CONTENT_FILTERED``.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web
from fakes.core import ReceivedFile, Recorder, Reply
from imagekit import image_of, png

__all__ = ["FakeStability", "Reply"]

RATIOS = {"16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"}
SD3_MODELS = {"sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash"}
GEN_COMMON = {"prompt", "aspect_ratio", "negative_prompt", "seed", "style_preset", "output_format"}
ENDPOINTS: dict[str, tuple[set[str], set[str], bool]] = {
    # path: (text fields, file fields, prompt required)
    "generate/core": (GEN_COMMON, set(), True),
    "generate/ultra": (GEN_COMMON | {"strength"}, {"image"}, True),
    "generate/sd3": (GEN_COMMON | {"mode", "model", "strength", "cfg_scale"}, {"image"}, True),
    "edit/inpaint": (
        {"prompt", "negative_prompt", "grow_mask", "seed", "output_format", "style_preset"},
        {"image", "mask"},
        True,
    ),
    "edit/erase": ({"grow_mask", "seed", "output_format"}, {"image", "mask"}, False),
    "edit/remove-background": ({"output_format"}, {"image"}, False),
    "control/sketch": (
        {"prompt", "control_strength", "negative_prompt", "seed", "output_format", "style_preset"},
        {"image"},
        True,
    ),
    "control/structure": (
        {"prompt", "control_strength", "negative_prompt", "seed", "output_format", "style_preset"},
        {"image"},
        True,
    ),
}
PIL_FORMATS = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}


class FakeStability(Recorder):
    """Scripted replies are keyed by endpoint (``generate/core``...) or apply to any."""

    def __init__(self, api_key: str = "sk-stability") -> None:
        super().__init__()
        self.api_key = api_key
        self.filtered = 0
        self.app.router.add_post("/v2beta/stable-image/{group}/{name}", self._handle)

    def providers(self, name: str = "stability", **extra: Any) -> dict[str, Any]:
        return {name: {"api_key": self.api_key, "base_url": self.url, **extra}}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = f"{request.match_info['group']}/{request.match_info['name']}"
        if path not in ENDPOINTS:
            return web.json_response({"name": "not_found", "errors": [path]}, status=404)
        received = await self.record(request, key=path)
        problems: list[str] = []
        if received.headers.get("Authorization") != f"Bearer {self.api_key}":
            problems.append(f"Authorization is {received.headers.get('Authorization')!r}")
        accept = received.headers.get("Accept", "")
        if accept not in ("image/*", "application/json"):
            problems.append(f"Accept is {accept!r}")
        values = self.expect_multipart(received, problems)
        problems += self._check(path, values, received.files)
        return await self.respond(
            request,
            received,
            problems,
            lambda: self._success(path, values, received.files, accept),
            error_body={"id": "x", "name": "bad_request", "errors": problems},
            where=path,
        )

    @staticmethod
    def _check(path: str, values: dict[str, str], parts: list[ReceivedFile]) -> list[str]:
        text_ok, files_ok, needs_prompt = ENDPOINTS[path]
        problems: list[str] = []
        files = {f.field for f in parts}
        if set(values) - text_ok:
            problems.append(f"unknown fields {sorted(set(values) - text_ok)}")
        if files - files_ok:
            problems.append(f"unexpected files {sorted(files - files_ok)}")
        if needs_prompt and not values.get("prompt"):
            problems.append("prompt missing")
        if path.startswith(("edit/", "control/")) and "image" not in files:
            problems.append("image file missing")
        if "aspect_ratio" in values and values["aspect_ratio"] not in RATIOS:
            problems.append(f"aspect_ratio {values['aspect_ratio']!r}")
        if "strength" in values:
            if "image" not in files:
                problems.append("strength without an image")
            if not 0 <= float(values["strength"]) <= 1:
                problems.append("strength outside 0..1")
        if "image" in files and path.startswith("generate/") and "aspect_ratio" in values:
            problems.append("aspect_ratio is text-to-image only")
        if path == "generate/sd3":
            if values.get("model") not in SD3_MODELS:
                problems.append(f"model {values.get('model')!r}")
            mode = values.get("mode", "text-to-image")
            if (mode == "image-to-image") != ("image" in files):
                problems.append(f"mode {mode!r} does not match the image part")
            if values.get("output_format") == "webp":
                problems.append("sd3 does not output webp")
        if values.get("output_format") not in (None, "png", "jpeg", "webp"):
            problems.append(f"output_format {values['output_format']!r}")
        if "seed" in values and not values["seed"].isdigit():
            problems.append("seed is not an integer")
        for f in parts:
            if image_of(f.data) is None:
                problems.append(f"{f.field}: not an image")
            if not f.filename or not f.content_type or not f.content_type.startswith("image/"):
                problems.append(f"{f.field}: filename {f.filename!r} / type {f.content_type!r}")
        return problems

    def _success(
        self, path: str, values: dict[str, str], parts: list[ReceivedFile], accept: str
    ) -> web.Response:
        pil_fmt, ctype = PIL_FORMATS[values.get("output_format", "png")]
        side = 32
        source = next((image_of(f.data) for f in parts if f.field == "image"), None)
        if source is not None:
            side = source.size[0]
        data = png(f"{path}:{values.get('prompt')}:{len(self.requests)}", side, pil_fmt)
        finish = "SUCCESS"
        if self.filtered:
            self.filtered -= 1
            finish = "CONTENT_FILTERED"
        if accept == "application/json":
            body = {"image": base64.b64encode(data).decode(), "finish_reason": finish, "seed": 7}
            return web.json_response(body)
        return web.Response(
            body=data, content_type=ctype, headers={"finish-reason": finish, "seed": "7"}
        )
