"""``recraft/<model>``: Recraft's raster models (recraftv3, recraftv2, recraftv4, recraftv4_pro).

All under ``https://external.api.recraft.ai/v1`` with ``Authorization: Bearer``:
``/images/generations`` (JSON, OpenAI-like plus ``style``), ``/images/imageToImage`` (edit
without mask), ``/images/inpaint`` (edit with mask) and ``/images/variateImage`` (variations),
the last three multipart; answers are ``{created, data: [{image_id, b64_json | url}]}``. Docs:
https://www.recraft.ai/docs/api-reference/endpoints and .../appendix (sizes per model).

Translation: ``size`` → the model's own ``WxH`` (exact when listed, else the listed size
nearest in aspect ratio then area); ``n`` → ``n`` (1–6 per call, more in parallel calls);
``style``: the request's can only be OpenAI's ``vivid``/``natural``, which Recraft lacks, so
the config ``style`` (e.g. ``digital_illustration``) is sent instead, if any (V4 takes none);
the OpenAI mask (transparent = edit) → Recraft's grayscale mask (white = edit). Vector models
answer SVG, which this gateway does not serve: they are declared unable to do anything.
Recraft picks the file format, so a request naming an ``output_format`` skips Recraft.
Config: ``api_key``, ``base_url``, ``headers``, ``style``, ``strength`` (image-to-image,
default 0.5).
"""

from __future__ import annotations

import base64
from typing import Any

from ..config import ProviderConfig
from ..errors import UpstreamHTTPError
from ..request import GeneratedImage, ImageRequest, ImageResult, sniff_image
from .base import Capabilities
from .failures import invalid_input
from .fanout import fan_out
from .form import form_parts
from .http import HTTPProvider
from .openai import parse_images_response
from .sizes import nearest_size
from .translate import RatioSizes, batches, edit_mask_png, remap_policy

RATIOS = ("1:1", "2:1", "1:2", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "6:10", "14:10",
          "10:14", "16:9", "9:16")  # fmt: skip
V3_SIZES = (
    "1024x1024", "2048x1024", "1024x2048", "1536x1024", "1024x1536", "1365x1024", "1024x1365",
    "1280x1024", "1024x1280", "1024x1707", "1434x1024", "1024x1434", "1820x1024", "1024x1820",
)  # fmt: skip
V4_SIZES = (
    "1024x1024", "1536x768", "768x1536", "1280x832", "832x1280", "1216x896", "896x1216",
    "1152x896", "896x1152", "832x1344", "1280x896", "896x1280", "1344x768", "768x1344",
)  # fmt: skip
V4_PRO_SIZES = (
    "2048x2048", "3072x1536", "1536x3072", "2560x1664", "1664x2560", "2432x1792", "1792x2432",
    "2304x1792", "1792x2304", "1664x2688", "2560x1792", "1792x2560", "2688x1536", "1536x2688",
)  # fmt: skip
PER_CALL = 6


def native_sizes(model: str) -> tuple[str, ...]:
    if model.startswith("recraftv4"):
        return V4_PRO_SIZES if "pro" in model else V4_SIZES
    return V3_SIZES


def _pairs(sizes: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((int(s.split("x")[0]), int(s.split("x")[1])) for s in sizes)


def _kind(image: GeneratedImage) -> str | None:
    """The file format Recraft chose, from the first bytes (b64 decoded only that far)."""
    if image.b64:
        return sniff_image(base64.b64decode(image.b64[:24]))
    raw = image.raw()
    return sniff_image(raw[:16]) if raw else None


class RecraftProvider(HTTPProvider):
    """Recraft adapter: JSON generations, multipart edits and variations."""

    default_base_url = "https://external.api.recraft.ai/v1"

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.base_url = (config.base_url or self.default_base_url).rstrip("/")

    def capabilities(self, model: str) -> Capabilities:
        if model.endswith("vector"):
            return Capabilities.nothing(
                f"{model!r} is a vector model: it answers SVG, which this gateway does not serve"
            )
        return Capabilities(
            operations=frozenset({"generations", "edits", "variations"}),
            sizes=RatioSizes(RATIOS, native_sizes(model)),
            max_n=10,
            output_formats=frozenset(),
            max_images=1,
            mask=True,
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def size(self, model: str, size: str | None) -> str | None:
        if not size or size == "auto":
            return None
        native = native_sizes(model)
        if size in native:
            return size
        w, h = nearest_size(size, _pairs(native))
        return f"{w}x{h}"

    def style(self, model: str) -> str | None:
        """The configured Recraft style (V4 models take none)."""
        configured = self.config.option("style")
        if model.startswith("recraftv4") or not configured:
            return None
        return str(configured)

    def fields(self, model: str, request: ImageRequest, count: int) -> dict[str, Any]:
        """The parameters every endpoint shares (``prompt``/``size``/``strength`` per op)."""
        out: dict[str, Any] = {"n": count, "response_format": "b64_json"}
        if request.operation != "variations":
            out["model"] = model
            out["prompt"] = request.prompt or ""
            style = self.style(model)
            if style:
                out["style"] = style
        size = self.size(model, request.size)
        if size and request.operation != "edits":
            out["size"] = size
        if request.operation == "edits" and request.mask is None:
            out["strength"] = float(self.config.option("strength", 0.5))
        return out

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        if request.operation != "generations" and not request.images:
            raise invalid_input("an input image is required", "image")
        mask_png: bytes | None = None
        if request.operation == "edits" and request.mask is not None:
            mask_png = await edit_mask_png(request.mask, request.images[0])
        counts = batches(request.n_images, PER_CALL)

        async def one(i: int) -> list[GeneratedImage]:
            fields = self.fields(model, request, counts[i])
            try:
                doc = await self._send(request, fields, mask_png)
            except UpstreamHTTPError as exc:
                remap_policy(exc)
                raise
            return parse_images_response(doc, self.name).images

        images = await fan_out(len(counts), one)
        kinds = [_kind(image) for image in images]
        for image, kind in zip(images, kinds, strict=True):
            image.mime = f"image/{kind}" if kind else image.mime
        return ImageResult(images=images, output_format=kinds[0])

    async def _send(
        self, request: ImageRequest, fields: dict[str, Any], mask_png: bytes | None
    ) -> Any:
        if request.operation == "generations":
            url = f"{self.base_url}/images/generations"
            return await self.send_json("POST", url, headers=self._headers(), json=fields)
        path = {"variations": "variateImage", "edits": "inpaint" if mask_png else "imageToImage"}
        url = f"{self.base_url}/images/{path[request.operation]}"
        upload = request.images[0]
        files = [("image", upload.filename, upload.content_type, upload.read_bytes())]
        if mask_png is not None:
            files.append(("mask", "mask.png", "image/png", mask_png))
        form = form_parts([(key, str(value)) for key, value in fields.items()], files)
        return await self.send_json("POST", url, headers=self._headers(), data=form)
