"""``google/<model>``: the Gemini API (Google AI Studio key).

Gemini image models (``google/gemini-2.5-flash-image``...) go through ``generateContent``
(``POST {base}/v1beta/models/{model}:generateContent``), Imagen models
(``google/imagen-4.0-generate-001``...) through ``predict``; both authenticate with the
``x-goog-api-key`` header. Docs: https://ai.google.dev/gemini-api/docs/image-generation,
https://ai.google.dev/gemini-api/docs/imagen, https://ai.google.dev/api/generate-content.

Imagen on the Gemini API: Google's python-genai SDK stopped calling ``predict`` there in
August 2026 (``generate_images`` is Vertex-only since
https://github.com/googleapis/python-genai/commit/43ef621ffafde6b9a4591188a98d479a0c55d679).
We still speak the endpoint's wire format (taken from the SDK just before that change), but
``vertex/imagen-*`` is the supported route; see docs/providers/google.md.

Wire translation lives in ``gemini.py`` and ``imagen.py`` (shared with ``vertex/``); this module
holds the URL, the key, the fan-out of ``n`` and Google's error conventions. Config:
``api_key``, ``base_url`` (default https://generativelanguage.googleapis.com), ``api_version``
(default ``v1beta``), ``headers``, and ``parameters`` (extra Imagen ``parameters``, e.g.
``personGeneration``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..config import ProviderConfig
from ..errors import UpstreamHTTPError
from ..request import GeneratedImage, ImageRequest, ImageResult
from . import gemini, imagen
from .base import Capabilities
from .fanout import fan_out
from .http import HTTPProvider
from .translate import batches, is_policy_message, token_usage

CREDENTIAL_MARKERS = ("api key not valid", "api_key_invalid", "api key expired")
GOOGLE_POLICY_MARKERS = ("responsible ai", "sensitive words", "blocked")


def remap_error(exc: UpstreamHTTPError) -> UpstreamHTTPError:
    """Google's conventions → ours: a bad key is a 400 there, a 401 here; RAI refusals → policy."""
    lowered = exc.message.lower()
    if exc.status == 400 and any(m in lowered for m in CREDENTIAL_MARKERS):
        exc.status, exc.code = 401, "provider_credential_invalid"
    elif exc.status == 400 and (
        is_policy_message(exc.message) or any(m in lowered for m in GOOGLE_POLICY_MARKERS)
    ):
        exc.code = "content_policy_violation"
    return exc


def not_an_image_model(model: str) -> str:
    """Why a Gemini model without ``image`` in its name serves nothing here."""
    return (
        f"{model!r} is not an image model (Gemini image models have 'image' in their name, "
        "e.g. gemini-2.5-flash-image)"
    )


def gemini_capabilities(model: str) -> Capabilities:
    """``gemini.capabilities``, with the reason when the model makes no images."""
    caps = gemini.capabilities(model)
    return caps if caps.operations else Capabilities.nothing(not_an_image_model(model))


def seeded(request: ImageRequest, index: int) -> ImageRequest:
    """The request for the ``index``-th parallel call: a given seed is offset so images differ."""
    if request.seed is None or index == 0:
        return request
    return dataclasses.replace(request, seed=request.seed + index)


async def gather_gemini(
    n: int, request: ImageRequest, post: Callable[[ImageRequest], Awaitable[Any]], provider: str
) -> ImageResult:
    """``n`` parallel ``generateContent`` calls → one result with summed token usage."""
    usages: list[dict[str, int]] = []

    async def one(i: int) -> list[GeneratedImage]:
        images, usage = gemini.parse_response(await post(seeded(request, i)), provider)
        if usage is not None:
            usages.append(usage)
        return images[:1]

    images = await fan_out(n, one)
    return ImageResult(images=images, created=int(time.time()), usage=token_usage(usages),
                       output_format="png")  # fmt: skip


async def gather_imagen(
    model: str, request: ImageRequest, post: Callable[[int], Awaitable[Any]], provider: str
) -> ImageResult:
    """``n`` as ``sampleCount`` batches run in parallel → one result."""
    counts = batches(request.n_images, imagen.per_call(model))

    async def one(i: int) -> list[GeneratedImage]:
        return imagen.parse_predictions(await post(counts[i]), provider)

    images = await fan_out(len(counts), one)
    return ImageResult(images=images, created=int(time.time()),
                       output_format=request.output_format or "png")  # fmt: skip


class GoogleProvider(HTTPProvider):
    """Gemini API adapter: one aiohttp session, key in ``x-goog-api-key``."""

    default_base_url = "https://generativelanguage.googleapis.com"

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.base_url = (config.base_url or self.default_base_url).rstrip("/")
        self.version = config.api_version or "v1beta"

    def capabilities(self, model: str) -> Capabilities:
        if imagen.is_imagen(model):
            if imagen.is_edit_model(model):
                return Capabilities.nothing(f"{model!r} is an Imagen editing model: Vertex AI only")
            return imagen.capabilities(model, vertex=False)
        return gemini_capabilities(model)

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.config.api_key} if self.config.api_key else {}

    def _url(self, model: str, method: str) -> str:
        return f"{self.base_url}/{self.version}/models/{model}:{method}"

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        try:
            return await self.send_json("POST", url, headers=self._headers(), json=body)
        except UpstreamHTTPError as exc:
            raise remap_error(exc) from None

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        if imagen.is_imagen(model):
            extra = dict(self.config.option("parameters") or {})
            url = self._url(model, "predict")
            return await gather_imagen(
                model,
                request,
                lambda count: self._post(
                    url, imagen.generate_body(model, request, count, vertex=False, extra=extra)
                ),
                self.name,
            )
        url = self._url(model, "generateContent")
        images = await gemini.inline_images(request)
        return await gather_gemini(
            request.n_images,
            request,
            lambda req: self._post(url, gemini.request_body(model, req, images)),
            self.name,
        )
