"""A fake Together AI images API: ``POST /v1/images/generations`` with bearer auth, integer
``width``/``height``, ``response_format`` base64|url and ``image_url`` for Kontext edits.

    with FakeTogether() as fake:
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
        "width",
        "height",
        "steps",
        "seed",
        "negative_prompt",
        "response_format",
        "output_format",
        "image_url",
        "guidance",
        "image_loras",
        "disable_safety_checker",
        "reference_images",
    }
)
INTS = ("n", "width", "height", "steps", "seed")


class FakeTogether(Recorder):
    def __init__(self, api_key: str = "together-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.app.router.add_post("/v1/images/generations", self._handle)

    def providers(self, **extra: Any) -> dict[str, Any]:
        return {"together": {"api_key": self.api_key, "base_url": self.url + "/v1", **extra}}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = await self.record(request)
        problems: list[str] = []
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            problems.append(f"Authorization is {request.headers.get('Authorization')!r}")
        doc = self.expect_json(received, problems)
        if set(doc) - FIELDS:
            problems.append(f"unknown parameters {sorted(set(doc) - FIELDS)}")
        if not isinstance(doc.get("model"), str) or not isinstance(doc.get("prompt"), str):
            problems.append("model and prompt are required strings")
        for name in INTS:
            if name in doc and (not isinstance(doc[name], int) or isinstance(doc[name], bool)):
                problems.append(f"{name} is {doc[name]!r}, not an integer")
        if doc.get("response_format", "url") not in ("base64", "url"):
            problems.append(f"response_format {doc.get('response_format')!r}")
        if doc.get("output_format", "jpeg") not in ("jpeg", "png"):
            problems.append(f"output_format {doc.get('output_format')!r}")
        if "image_url" in doc:
            expect_image(doc["image_url"], "image_url", problems, data_uri=True)
        return await self.respond(request, received, problems, lambda: self._ok(doc))

    @staticmethod
    def _ok(doc: dict[str, Any]) -> dict[str, Any]:
        fmt = "PNG" if doc.get("output_format") == "png" else "JPEG"
        data = [
            {
                "index": i,
                "b64_json": base64.b64encode(png(i, fmt=fmt)).decode(),
                "timings": {"inference": 0.1},
            }
            for i in range(int(doc.get("n") or 1))
        ]
        return {"id": "img-1", "model": doc.get("model"), "object": "list", "data": data}
