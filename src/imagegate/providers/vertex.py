"""``vertex/<model>``: Imagen (and Gemini image models) on Google Cloud Vertex AI.

``POST https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/{region}/
publishers/google/models/{model}:predict`` with ``Authorization: Bearer <token>``;
``instances[{prompt}]``, ``parameters{sampleCount, aspectRatio, ...}`` in,
``predictions[].bytesBase64Encoded`` out. Docs:
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api and
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api-edit.
Gemini image models (``vertex/gemini-2.5-flash-image``) use ``:generateContent`` on the same
path (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference).

Config: ``project_id``, ``region`` (default ``us-central1``; ``global`` uses
aiplatform.googleapis.com), ``base_url``, ``api_version`` (default ``v1``), credentials as
``access_token`` or a service-account key (``credentials_file`` / ``credentials``) — or an
``api_key`` alone for Vertex express mode (no project) — and ``parameters`` (extra Imagen
``parameters``, e.g. ``personGeneration``, ``safetySetting``).
"""

from __future__ import annotations

from typing import Any

from ..config import ProviderConfig
from ..errors import UpstreamHTTPError
from ..request import GeneratedImage, ImageRequest, ImageResult
from . import gemini, imagen, inputs
from .base import Capabilities
from .failures import invalid_input, not_configured
from .fanout import fan_out
from .google import gather_gemini, gather_imagen, gemini_capabilities, remap_error
from .google_auth import TokenSource
from .http import HTTPProvider
from .translate import batches, edit_mask_png


class VertexProvider(HTTPProvider):
    """Vertex AI adapter: one aiohttp session, OAuth bearer tokens from ``TokenSource``."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.project: str | None = config.option("project_id") or config.option("project")
        self.region = config.region or "us-central1"
        host = (
            "https://aiplatform.googleapis.com"
            if self.region == "global"
            else f"https://{self.region}-aiplatform.googleapis.com"
        )
        self.base_url = (config.base_url or host).rstrip("/")
        self.version = config.api_version or "v1"
        self.tokens = TokenSource(config)

    def capabilities(self, model: str) -> Capabilities:
        if imagen.is_imagen(model):
            return imagen.capabilities(model, vertex=True)
        return gemini_capabilities(model)

    def _url(self, model: str, method: str) -> str:
        if self.project:
            scope = f"projects/{self.project}/locations/{self.region}/"
        elif self.config.api_key and not self.tokens.configured:
            scope = ""  # express mode: the key names the project
        else:
            raise not_configured(
                self.name, "project_id is missing (or, for Vertex express mode, api_key alone)"
            )
        return f"{self.base_url}/{self.version}/{scope}publishers/google/models/{model}:{method}"

    async def _fetch_token(self, url: str, form: dict[str, str]) -> Any:
        return await self.send_json("POST", url, data=form)

    async def _headers(self) -> dict[str, str]:
        if not self.tokens.configured and self.config.api_key:
            return {"x-goog-api-key": self.config.api_key}
        if not self.tokens.configured:
            raise not_configured(
                self.name, "no credentials (access_token, credentials_file, credentials or api_key)"
            )
        return {"Authorization": f"Bearer {await self.tokens.token(self._fetch_token)}"}

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        headers = await self._headers()
        try:
            return await self.send_json("POST", url, headers=headers, json=body)
        except UpstreamHTTPError as exc:
            raise remap_error(exc) from None

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        extra = dict(self.config.option("parameters") or {})
        if not imagen.is_imagen(model):
            url = self._url(model, "generateContent")
            images = await gemini.inline_images(request)
            return await gather_gemini(
                request.n_images,
                request,
                lambda req: self._post(url, gemini.request_body(model, req, images)),
                self.name,
            )
        url = self._url(model, "predict")
        if request.operation == "generations":
            return await gather_imagen(
                model,
                request,
                lambda count: self._post(
                    url, imagen.generate_body(model, request, count, vertex=True, extra=extra)
                ),
                self.name,
            )
        return await self._edit(url, request, extra)

    async def _edit(self, url: str, request: ImageRequest, extra: dict[str, Any]) -> ImageResult:
        if not request.images:
            raise invalid_input("an input image is required", "image")
        mask_png = await edit_mask_png(request.mask, request.images[0])
        counts = batches(request.n_images, 4)
        image_b64 = await inputs.b64(request.images[0])  # once for every batch call

        async def one(i: int) -> list[GeneratedImage]:
            body = imagen.edit_body(request, counts[i], image_b64, mask_png, extra)
            return imagen.parse_predictions(await self._post(url, body), self.name)

        images = await fan_out(len(counts), one)
        return ImageResult(images=images, output_format=request.output_format or "png")
