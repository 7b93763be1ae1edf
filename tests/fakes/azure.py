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
from fakes.openai import EDIT_FIELDS, GEN_FIELDS
from fakes.scripted import Received, ScriptedFake, image_bytes

API_VERSION = "2025-04-01-preview"


class FakeAzure(ScriptedFake):
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

    async def _handle(self, request: web.Request) -> web.Response:
        operation = request.match_info["operation"]
        deployment = request.match_info["deployment"]
        received = Received(operation, request.path, dict(request.headers))
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
            await self.read_json(request, received, problems)
            keys = set(received.json or {})
            allowed = GEN_FIELDS
        else:
            await self.read_multipart(request, received, problems)
            keys = set(received.fields)
            allowed = EDIT_FIELDS
            if not any(f.field in ("image", "image[]") for f in received.files):
                problems.append("no image file part")
        if "model" in keys:
            problems.append("model sent in the body (the deployment picks it)")
        if keys - allowed:
            problems.append(f"unknown parameters {sorted(keys - allowed)}")
        return await self.respond(
            received, problems, deployment, lambda: self._success(received, deployment)
        )

    def _success(self, received: Received, deployment: str) -> dict[str, Any]:
        fields = received.json or {k: v[0] for k, v in received.fields.items()}
        n = int(fields.get("n") or 1)
        data = [
            {"b64_json": base64.b64encode(image_bytes("PNG", i)).decode(),
             "content_filter_results": {}}
            for i in range(n)
        ]  # fmt: skip
        return {
            "created": int(time.time()),
            "data": data,
            "usage": {
                "input_tokens": 12, "output_tokens": 30 * n, "total_tokens": 12 + 30 * n,
                "input_tokens_details": {"text_tokens": 12, "image_tokens": 0},
            },
        }  # fmt: skip
