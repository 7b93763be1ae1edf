"""``xai/<model>``: xAI's Grok image models.

``POST https://api.x.ai/v1/images/generations`` and ``/v1/images/edits`` with
``Authorization: Bearer``; OpenAI-style answers (``{data: [{b64_json | url, mime_type?,
revised_prompt?}]}``). Docs: https://docs.x.ai/docs/guides/image-generation and
https://docs.x.ai/docs/api-reference (Image generations, Image edits).

xAI rejects ``size``, ``quality`` and ``style`` ("Argument not supported"), so they are never
sent. Translation: ``size`` → ``aspect_ratio`` (and ``resolution: "2k"`` when the longest side
asks for more than 1536 px) on the Grok Imagine models; ``grok-2-image`` renders 1024x768 only.
``n`` → ``n`` (1–10 per call). Edits take a JSON body with the input image(s) as ``data:``
URIs (``image: {url, type: "image_url"}``, or ``images: [...]`` for several, up to 3). Output
is JPEG. xAI answers a bad key with a 400; it becomes a 401 here. Config: ``api_key``,
``base_url``, ``headers``.
"""

from __future__ import annotations

from typing import Any

from ..config import ProviderConfig
from ..errors import UpstreamHTTPError
from ..request import ImageRequest, ImageResult
from . import inputs
from .base import Capabilities
from .failures import invalid_input
from .http import HTTPProvider
from .openai import parse_images_response
from .sizes import aspect_ratio
from .translate import RatioSizes, remap_policy, side_tier

RATIOS = ("1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "2:1", "1:2", "20:9", "9:20")
JPEG = frozenset({"jpeg"})
GROK_2 = Capabilities(
    operations=frozenset({"generations"}),
    sizes=frozenset({"auto", "1024x768"}),
    max_n=10,
    output_formats=JPEG,
)
IMAGINE = Capabilities(
    operations=frozenset({"generations", "edits"}),
    sizes=RatioSizes(RATIOS),
    max_n=10,
    output_formats=JPEG,
    max_images=3,
)


def is_grok2(model: str) -> bool:
    return model.startswith("grok-2-image")


class XAIProvider(HTTPProvider):
    """xAI images adapter: OpenAI-shaped JSON without the fields xAI refuses."""

    default_base_url = "https://api.x.ai/v1"

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.base_url = (config.base_url or self.default_base_url).rstrip("/")

    def capabilities(self, model: str) -> Capabilities:
        return GROK_2 if is_grok2(model) else IMAGINE

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def body(self, model: str, request: ImageRequest, image_urls: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "prompt": request.prompt or "",
            "n": request.n_images,
            "response_format": "b64_json",
        }
        if not is_grok2(model) and request.size and request.size != "auto":
            body["aspect_ratio"] = aspect_ratio(request.size, RATIOS)
            if side_tier(request.size, ((1536, "1k"), (8192, "2k"))) == "2k":
                body["resolution"] = "2k"
        if request.user:
            body["user"] = request.user
        if request.operation == "edits":
            refs = [{"url": url, "type": "image_url"} for url in image_urls]
            if len(refs) == 1:
                body["image"] = refs[0]
            else:
                body["images"] = refs
        return body

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        if request.operation == "edits" and not request.images:
            raise invalid_input("an input image is required", "image")
        url = f"{self.base_url}/images/{request.operation}"
        image_urls = [await inputs.data_uri(f) for f in request.images]
        try:
            doc = await self.send_json(
                "POST", url, headers=self._headers(), json=self.body(model, request, image_urls)
            )
        except UpstreamHTTPError as exc:
            if exc.status == 400 and "api key" in exc.message.lower():
                exc.status, exc.code = 401, "provider_credential_invalid"  # xAI says 400
            remap_policy(exc)
            raise
        result = parse_images_response(doc, self.name)
        result.output_format = "jpeg"
        result.usage = None  # xAI reports cost, not tokens
        return result
