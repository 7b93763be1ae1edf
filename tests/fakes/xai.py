"""A fake xAI images API: ``/v1/images/generations`` and ``/v1/images/edits`` (JSON, data-URI
images), bearer auth; it refuses ``size``/``quality``/``style`` as xAI does.

    with FakeXAI() as fake:
        config = make_config(providers=fake.providers())
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web
from fakes.core import Recorder
from imagekit import expect_image, png

FIELDS = frozenset(
    {
        "model",
        "prompt",
        "n",
        "response_format",
        "user",
        "aspect_ratio",
        "resolution",
        "image",
        "images",
    }
)
RATIOS = {
    "1:1",
    "4:3",
    "3:4",
    "3:2",
    "2:3",
    "16:9",
    "9:16",
    "2:1",
    "1:2",
    "20:9",
    "9:20",
    "19.5:9",
    "9:19.5",
    "auto",
}


class FakeXAI(Recorder):
    def __init__(self, api_key: str = "xai-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.app.router.add_post("/v1/images/{operation}", self._handle)

    def providers(self, **extra: Any) -> dict[str, Any]:
        return {"xai": {"api_key": self.api_key, "base_url": self.url + "/v1", **extra}}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation = request.match_info["operation"]
        received = await self.record(request)
        problems: list[str] = []
        if operation not in ("generations", "edits"):
            problems.append(f"xAI has no images/{operation}")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            problems.append(f"Authorization is {request.headers.get('Authorization')!r}")
        doc = self.expect_json(received, problems)
        for name in ("size", "quality", "style"):
            if name in doc:
                problems.append(f"Argument not supported: {name}")
        if set(doc) - FIELDS - {"size", "quality", "style"}:
            problems.append(f"unknown parameters {sorted(set(doc) - FIELDS)}")
        n = doc.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= 10:
            problems.append(f"n is {n!r}, expected 1..10")
        if "aspect_ratio" in doc and doc["aspect_ratio"] not in RATIOS:
            problems.append(f"aspect_ratio {doc['aspect_ratio']!r}")
        if doc.get("resolution", "1k") not in ("1k", "2k"):
            problems.append(f"resolution {doc.get('resolution')!r}")
        if operation == "edits":
            refs = doc.get("images") if "images" in doc else [doc.get("image")]
            if not isinstance(refs, list) or not 1 <= len(refs) <= 3:
                problems.append("edits take 1 to 3 images")
                refs = []
            for i, ref in enumerate(refs):
                if not isinstance(ref, dict) or ref.get("type") != "image_url":
                    problems.append(f"image {i} must be {{url, type: image_url}}")
                    continue
                expect_image(ref.get("url"), f"image {i}", problems, data_uri=True)
        elif "image" in doc or "images" in doc:
            problems.append("images sent to generations")
        return await self.respond(request, received, problems, lambda: self._ok(doc))

    @staticmethod
    def _ok(doc: dict[str, Any]) -> dict[str, Any]:
        as_url = doc.get("response_format", "url") == "url"
        data: list[dict[str, Any]] = []
        for i in range(int(doc.get("n") or 1)):
            item: dict[str, Any] = {"mime_type": "image/jpeg", "revised_prompt": "revised"}
            if as_url:
                item["url"] = f"https://imgen.x.ai/xai-imgen/{i}.jpg"
            else:
                item["b64_json"] = base64.b64encode(png(i, fmt="JPEG")).decode()
            data.append(item)
        return {"data": data, "usage": {"cost_in_usd_ticks": 200000000}}
