"""A fake Azure OpenAI images endpoint.

It serves the deployment-scoped paths and checks the ``api-key`` header and ``api-version``::

    with FakeAzure() as fake:
        config = make_config(providers=fake.providers(deployments={"gpt-image-1": "img"}))
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aiohttp import web
from fakes.core import Received, Recorder
from fakes.openai import EDIT_FIELDS, GEN_FIELDS
from imagekit import png

API_VERSION = "2025-04-01-preview"


class FakeAzure(Recorder):
    """Scripted replies are keyed by deployment."""

    def __init__(self, api_key: str = "azure-key", api_version: str = API_VERSION) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_version = api_version
        self.app.router.add_post(
            "/openai/deployments/{deployment}/images/{operation}", self._handle
        )

    def providers(self, **extra: Any) -> dict[str, Any]:
        entry = {"api_key": self.api_key, "base_url": self.url, "api_version": self.api_version}
        return {"azure": {**entry, **extra}}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation = request.match_info["operation"]
        deployment = request.match_info["deployment"]
        received = await self.record(request, key=deployment)
        problems: list[str] = []
        if operation not in ("generations", "edits"):
            problems.append(f"Azure has no images/{operation}")
        if request.headers.get("api-key") != self.api_key:
            problems.append(f"api-key header is {request.headers.get('api-key')!r}")
        if "Authorization" in request.headers:
            problems.append("Authorization sent alongside api-key")
        if request.query.get("api-version") != self.api_version:
            problems.append(f"api-version is {request.query.get('api-version')!r}")
        if operation == "generations":
            keys = set(self.expect_json(received, problems))
            allowed = GEN_FIELDS
        else:
            keys = set(self.expect_multipart(received, problems, repeatable={"image[]"}))
            allowed = EDIT_FIELDS
            if not any(f.field in ("image", "image[]") for f in received.files):
                problems.append("no image file part")
        if "model" in keys:
            problems.append("model sent in the body (the deployment picks it)")
        if keys - allowed:
            problems.append(f"unknown parameters {sorted(keys - allowed)}")
        return await self.respond(request, received, problems, lambda: self.success(received))

    @staticmethod
    def success(received: Received) -> dict[str, Any]:
        n = int(received.values.get("n") or 1)
        data = [
            {"b64_json": base64.b64encode(png(i)).decode(), "content_filter_results": {}}
            for i in range(n)
        ]
        return {
            "created": int(time.time()),
            "data": data,
            "usage": {
                "input_tokens": 12,
                "output_tokens": 30 * n,
                "total_tokens": 12 + 30 * n,
                "input_tokens_details": {"text_tokens": 12, "image_tokens": 0},
            },
        }
