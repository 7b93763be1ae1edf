"""``together/<org>/<model>``: image models served by Together AI (FLUX and others).

``POST https://api.together.xyz/v1/images/generations`` with ``Authorization: Bearer``; the
answer is OpenAI-like (``{id, model, object, data: [{index, b64_json | url}]}``). Docs:
https://docs.together.ai/reference/post-images-generations and
https://docs.together.ai/docs/images-overview (Kontext editing through ``image_url``).

Translation: ``size`` → ``width``/``height`` (``auto`` leaves Together's default); ``n`` → ``n``
(at most ``max_n_per_call`` per call, default 4, the rest in parallel calls); ``seed`` →
``seed``; ``output_format`` png/jpeg → ``output_format``; images are always asked as base64
(``response_format: "base64"``). Edits exist only on Kontext models: the input image travels as
a ``data:`` URI in ``image_url``. Config: ``api_key``, ``base_url``, ``headers``,
``max_n_per_call``, ``steps`` (default steps for every call).
"""

from __future__ import annotations

from typing import Any

from ..config import ProviderConfig
from ..errors import UpstreamHTTPError
from ..request import GeneratedImage, ImageRequest, ImageResult
from . import inputs
from .base import Capabilities
from .failures import invalid_input
from .fanout import fan_out
from .http import HTTPProvider
from .openai import parse_images_response
from .sizes import parse_wh
from .translate import batches, remap_policy

FORMATS = frozenset({"png", "jpeg"})
GENERATE = Capabilities(operations=frozenset({"generations"}), max_n=10, output_formats=FORMATS)
KONTEXT = Capabilities(
    operations=frozenset({"generations", "edits"}), max_n=10, output_formats=FORMATS, max_images=1
)


class TogetherProvider(HTTPProvider):
    """Together AI images adapter (JSON in, OpenAI-like ``data`` out)."""

    default_base_url = "https://api.together.xyz/v1"

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.base_url = (config.base_url or self.default_base_url).rstrip("/")
        self.per_call = int(config.option("max_n_per_call", 4))

    def capabilities(self, model: str) -> Capabilities:
        return KONTEXT if "kontext" in model.lower() else GENERATE

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def body(
        self, model: str, request: ImageRequest, count: int, index: int, image_url: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "prompt": request.prompt or "",
            "n": count,
            "response_format": "base64",
        }
        wh = parse_wh(request.size)
        if wh is not None:
            body["width"], body["height"] = wh
        if request.seed is not None:
            body["seed"] = request.seed + index  # parallel calls must not repeat an image
        if request.output_format:
            body["output_format"] = request.output_format
        steps = self.config.option("steps")
        if steps is not None:
            body["steps"] = int(steps)
        if image_url is not None:
            body["image_url"] = image_url
        return body

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        if request.operation == "edits" and not request.images:
            raise invalid_input("an input image is required", "image")
        url = f"{self.base_url}/images/generations"
        counts = batches(request.n_images, self.per_call)
        image_url = None  # encoded once for every batch call, read off the event loop
        if request.operation == "edits" and request.images:
            image_url = await inputs.data_uri(request.images[0])

        async def one(i: int) -> list[GeneratedImage]:
            body = self.body(model, request, counts[i], i, image_url)
            try:
                doc = await self.send_json("POST", url, headers=self._headers(), json=body)
            except UpstreamHTTPError as exc:
                remap_policy(exc)
                raise
            return parse_images_response(doc, self.name).images

        images = await fan_out(len(counts), one)
        return ImageResult(images=images, output_format=request.output_format or "jpeg")
