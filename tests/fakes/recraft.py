"""A fake Recraft API: ``/v1/images/generations`` (JSON), ``/imageToImage``, ``/inpaint`` and
``/variateImage`` (multipart), bearer auth, per-model size lists; it answers WEBP images.

    with FakeRecraft() as fake:
        config = make_config(providers=fake.providers())
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aiohttp import web
from fakes.core import Received, Recorder
from imagekit import image_of, png

V3_SIZES = {
    "1024x1024",
    "2048x1024",
    "1024x2048",
    "1536x1024",
    "1024x1536",
    "1365x1024",
    "1024x1365",
    "1280x1024",
    "1024x1280",
    "1024x1707",
    "1434x1024",
    "1024x1434",
    "1820x1024",
    "1024x1820",
}
# Recraft's appendix (https://www.recraft.ai/docs/api-reference/appendix): sizes per model
V4_SIZES = set(
    "1024x1024 1536x768 768x1536 1280x832 832x1280 1216x896 896x1216 1152x896 896x1152 "
    "832x1344 1280x896 896x1280 1344x768 768x1344".split()
)
V4_PRO_SIZES = set(
    "2048x2048 3072x1536 1536x3072 2560x1664 1664x2560 2432x1792 1792x2432 2304x1792 "
    "1792x2304 1664x2688 2560x1792 1792x2560 2688x1536 1536x2688".split()
)
RATIOS = {
    "1:1",
    "2:1",
    "1:2",
    "3:2",
    "2:3",
    "4:3",
    "3:4",
    "5:4",
    "4:5",
    "6:10",
    "14:10",
    "10:14",
    "16:9",
    "9:16",
}
GEN_FIELDS = {
    "prompt",
    "n",
    "model",
    "style",
    "style_id",
    "substyle",
    "size",
    "negative_prompt",
    "response_format",
    "controls",
    "text_layout",
}
FORM_FIELDS = {
    "imageToImage": {
        "prompt",
        "strength",
        "n",
        "model",
        "style",
        "style_id",
        "substyle",
        "response_format",
        "negative_prompt",
    },
    "inpaint": {
        "prompt",
        "n",
        "model",
        "style",
        "style_id",
        "substyle",
        "response_format",
        "negative_prompt",
    },
    "variateImage": {"size", "n", "response_format", "seed"},
}
FORM_FILES = {"imageToImage": ["image"], "inpaint": ["image", "mask"], "variateImage": ["image"]}


def sizes_of(model: Any) -> set[str]:
    if isinstance(model, str) and model.startswith("recraftv4"):
        return V4_PRO_SIZES if "pro" in model else V4_SIZES
    return V3_SIZES


class FakeRecraft(Recorder):
    def __init__(self, api_key: str = "recraft-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.app.router.add_post("/v1/images/{operation}", self._handle)

    def providers(self, **extra: Any) -> dict[str, Any]:
        return {"recraft": {"api_key": self.api_key, "base_url": self.url + "/v1", **extra}}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation = request.match_info["operation"]
        received = await self.record(request)
        problems: list[str] = []
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            problems.append(f"Authorization is {request.headers.get('Authorization')!r}")
        if operation == "generations":
            fields: dict[str, Any] = self.expect_json(received, problems)
            allowed = GEN_FIELDS
            if not isinstance(fields.get("prompt"), str):
                problems.append("prompt missing")
        elif operation in FORM_FIELDS:
            fields = self.expect_multipart(received, problems)
            allowed = FORM_FIELDS[operation]
            self._check_files(operation, received, problems)
        else:
            return web.json_response({"code": "not_found", "message": "no such endpoint"}, 404)
        if set(fields) - allowed:
            problems.append(f"unknown parameters {sorted(set(fields) - allowed)}")
        n = int(fields.get("n", 1))
        if not 1 <= n <= 6:
            problems.append(f"n is {n}, expected 1..6")
        size = fields.get("size")
        if size is not None and size not in sizes_of(fields.get("model")) and size not in RATIOS:
            problems.append(f"size {size!r} is not a supported size")
        if fields.get("response_format", "url") not in ("url", "b64_json"):
            problems.append(f"response_format {fields.get('response_format')!r}")
        if operation == "imageToImage" and not 0 <= float(fields.get("strength", -1)) <= 1:
            problems.append("strength must be in [0, 1]")
        return await self.respond(request, received, problems, lambda: self._ok(n))

    @staticmethod
    def _check_files(operation: str, received: Received, problems: list[str]) -> None:
        names = sorted(received.file_names)
        if names != sorted(FORM_FILES[operation]):
            problems.append(f"file parts {names}, expected {FORM_FILES[operation]}")
            return
        images = {f.field: image_of(f.data) for f in received.files}
        if None in images.values():
            problems.append("a file part is not an image")
            return
        mask = images.get("mask")
        if mask is not None:
            if mask.mode != "L":
                problems.append(f"mask mode {mask.mode}, expected grayscale")
            if mask.size != images["image"].size:
                problems.append("mask size differs from the image")

    @staticmethod
    def _ok(n: int) -> dict[str, Any]:
        data = [
            {
                "image_id": f"00000000-0000-0000-0000-00000000000{i}",
                "b64_json": base64.b64encode(png(i, fmt="WEBP")).decode(),
            }
            for i in range(n)
        ]
        return {"created": int(time.time()), "credits": 40 * n, "data": data}
