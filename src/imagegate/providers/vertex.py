"""``vertex/<model>``: Imagen (and Gemini image models) on Google Cloud Vertex AI.

``POST https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/{region}/
publishers/google/models/{model}:predict`` with ``Authorization: Bearer <token>``;
``instances[{prompt}]``, ``parameters{sampleCount, aspectRatio, ...}`` in,
``predictions[].bytesBase64Encoded`` out. Docs:
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api and
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api-edit.
Gemini image models (``vertex/gemini-2.5-flash-image``) use ``:generateContent`` on the same
path (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference).

Config: ``project_id``, ``region``, ``base_url``, ``api_version`` (default ``v1``), credentials
(``google_auth.TokenSource``: ``access_token``, a key in ``credentials_file`` / ``credentials``,
else Application Default Credentials) — or an ``api_key`` alone for Vertex express mode (no
project) — and ``parameters`` (extra Imagen ``parameters``, e.g. ``personGeneration``).

Host, as the python-genai SDK picks it (``BaseApiClient.__init__`` in
https://github.com/googleapis/python-genai/blob/main/google/genai/_api_client.py): region
``global``, or express mode without a region, → ``aiplatform.googleapis.com``; the
multi-regions ``us``/``eu`` → ``aiplatform.{region}.rep.googleapis.com``; any other region
(default ``us-central1``) → ``{region}-aiplatform.googleapis.com``.
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

MULTI_REGIONS = frozenset({"us", "eu"})


def host_for(region: str) -> str:
    """The Vertex AI endpoint for ``region`` (see the module docstring)."""
    if region == "global":
        return "https://aiplatform.googleapis.com"
    if region in MULTI_REGIONS:
        return f"https://aiplatform.{region}.rep.googleapis.com"
    return f"https://{region}-aiplatform.googleapis.com"


class VertexProvider(HTTPProvider):
    """Vertex AI adapter: one aiohttp session, OAuth bearer tokens from ``TokenSource``."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.project: str | None = config.option("project_id") or config.option("project")
        self.tokens = TokenSource(config, name)
        # an api_key without a token or key configured: sent as x-goog-api-key
        self.use_key = bool(config.api_key) and not self.tokens.explicit
        express = self.use_key and not self.project
        self.region = config.region or ("global" if express else "us-central1")
        self.base_url = (config.base_url or host_for(self.region)).rstrip("/")
        self.version = config.api_version or "v1"

    def capabilities(self, model: str) -> Capabilities:
        if imagen.is_imagen(model):
            return imagen.capabilities(model, vertex=True)
        return gemini_capabilities(model)

    def _url(self, model: str, method: str) -> str:
        project = self.project or self.tokens.project  # configured, or the key's / ADC's
        if project:
            scope = f"projects/{project}/locations/{self.region}/"
        elif self.use_key:
            scope = ""  # express mode: the key names the project
        else:
            raise not_configured(
                self.name, "project_id is missing (or, for Vertex express mode, api_key alone)"
            )
        return f"{self.base_url}/{self.version}/{scope}publishers/google/models/{model}:{method}"

    async def _headers(self) -> dict[str, str]:
        if self.use_key:
            return {"x-goog-api-key": str(self.config.api_key)}
        return {"Authorization": f"Bearer {await self.tokens.token()}"}

    async def _post(self, model: str, method: str, body: dict[str, Any]) -> Any:
        headers = await self._headers()  # first: ADC may name the project
        url = self._url(model, method)
        try:
            return await self.send_json("POST", url, headers=headers, json=body)
        except UpstreamHTTPError as exc:
            raise remap_error(exc) from None

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        extra = dict(self.config.option("parameters") or {})
        if not imagen.is_imagen(model):
            images = await gemini.inline_images(request)
            return await gather_gemini(
                request.n_images,
                request,
                lambda req: self._post(
                    model, "generateContent", gemini.request_body(model, req, images)
                ),
                self.name,
            )
        if request.operation == "generations":
            return await gather_imagen(
                model,
                request,
                lambda count: self._post(
                    model,
                    "predict",
                    imagen.generate_body(model, request, count, vertex=True, extra=extra),
                ),
                self.name,
            )
        return await self._edit(model, request, extra)

    async def _edit(self, model: str, request: ImageRequest, extra: dict[str, Any]) -> ImageResult:
        if not request.images:
            raise invalid_input("an input image is required", "image")
        mask_png = await edit_mask_png(request.mask, request.images[0])
        counts = batches(request.n_images, 4)
        image_b64 = await inputs.b64(request.images[0])  # once for every batch call

        async def one(i: int) -> list[GeneratedImage]:
            body = imagen.edit_body(request, counts[i], image_b64, mask_png, extra)
            return imagen.parse_predictions(await self._post(model, "predict", body), self.name)

        images = await fan_out(len(counts), one)
        return ImageResult(images=images, output_format=request.output_format or "png")
