"""Stability AI adapter: Stable Image v2beta over multipart/form-data.

Wire format: https://platform.stability.ai/docs/api-reference (Stable Image → Generate:
``POST /v2beta/stable-image/generate/{ultra|core|sd3}``; Edit: ``edit/inpaint``, ``edit/erase``,
``edit/remove-background``; Control: ``control/sketch``, ``control/structure``).
``Authorization: Bearer <key>``, ``Accept: image/*`` (raw bytes; ``finish-reason`` and ``seed``
come back as headers). Every call returns one image, so ``n`` is fanned out.

Translation: ``size`` → the nearest supported ``aspect_ratio``; ``output_format`` and ``seed``
as given; edits with a mask (or on Core, which has no image-to-image) go to ``edit/inpaint``
with the OpenAI mask converted to Stability's white-is-edit mask; edits without a mask on
Ultra/SD3 run image-to-image with ``strength`` (config ``image_strength``, default 0.5).
A 403 (content moderation) or a ``CONTENT_FILTERED`` finish reason is a 400
``content_policy_violation``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from ..config import ProviderConfig
from ..errors import UpstreamConnectionError, UpstreamHTTPError
from ..request import GeneratedImage, ImageRequest, ImageResult, Operation, sniff_image
from . import inputs
from .base import Capabilities
from .failures import content_policy, invalid_input, looks_like_policy
from .fanout import fan_out
from .form import form_parts
from .http import HTTPProvider
from .polling import interval_option
from .sizes import aspect_ratio

BASE_URL = "https://api.stability.ai"
RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
ALL_FORMATS = frozenset({"png", "jpeg", "webp"})
PNG_JPEG = frozenset({"png", "jpeg"})
GEN_EDIT: frozenset[Operation] = frozenset({"generations", "edits"})
EDIT: frozenset[Operation] = frozenset({"edits"})


@dataclass(frozen=True, slots=True)
class Model:
    """One Stability model: its endpoint (under /v2beta/stable-image/) and what it takes."""

    path: str
    caps: Capabilities
    sd3: str | None = None  # the sd3 endpoint's ``model`` field
    image_to_image: bool = False  # mask-less edits run image-to-image on this endpoint
    prompt: bool = True


def _gen(formats: frozenset[str]) -> Capabilities:
    return Capabilities(operations=GEN_EDIT, output_formats=formats, mask=True)


def _tool(formats: frozenset[str] = ALL_FORMATS, *, mask: bool = True) -> Capabilities:
    return Capabilities(operations=EDIT, output_formats=formats, mask=mask)


MODELS: dict[str, Model] = {
    "stable-image-ultra": Model("generate/ultra", _gen(ALL_FORMATS), image_to_image=True),
    "stable-image-core": Model("generate/core", _gen(ALL_FORMATS)),
    **{
        name: Model("generate/sd3", _gen(PNG_JPEG), sd3=name, image_to_image=True)
        for name in ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
    },
    "inpaint": Model("edit/inpaint", _tool()),
    "erase": Model("edit/erase", _tool(), prompt=False),
    "remove-background": Model(
        "edit/remove-background", _tool(frozenset({"png", "webp"}), mask=False), prompt=False
    ),
    "control-sketch": Model("control/sketch", _tool(mask=False)),
    "control-structure": Model("control/structure", _tool(mask=False)),
}
ALIASES = {"ultra": "stable-image-ultra", "core": "stable-image-core"}


def find_model(model: str) -> Model | None:
    return MODELS.get(ALIASES.get(model, model))


class StabilityProvider(HTTPProvider):
    """``stability/<model>``: ultra, core, sd3.5-*, and the edit/control tools."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.base_url = (config.base_url or BASE_URL).rstrip("/")
        self.image_strength = min(1.0, interval_option(config.option("image_strength"), 0.5))

    def capabilities(self, model: str) -> Capabilities:
        found = find_model(model)
        if found is None:
            return Capabilities.unknown_model(self.name, model, [*MODELS, *ALIASES])
        return found.caps

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        spec = find_model(model)
        if spec is None:
            raise invalid_input(self.capabilities(model).refused or "unknown model", "model")
        path, fields, files = await self._translate(spec, request)

        async def one(_: int) -> list[GeneratedImage]:
            return [await self._post(path, fields, files)]

        images = await fan_out(request.n_images, one)
        return ImageResult(
            images=images, created=int(time.time()), output_format=request.output_format
        )

    async def _translate(
        self, spec: Model, request: ImageRequest
    ) -> tuple[str, dict[str, str], list[tuple[str, str, str, bytes]]]:
        """Endpoint path, text fields and file parts (field, filename, type, bytes)."""
        fields: dict[str, str] = {}
        files: list[tuple[str, str, str, bytes]] = []
        path = spec.path
        if spec.prompt and request.prompt:
            fields["prompt"] = request.prompt
        if request.operation == "generations":
            fields["aspect_ratio"] = aspect_ratio(request.size, RATIOS)
            if spec.sd3:
                fields["model"] = spec.sd3
                fields["mode"] = "text-to-image"
        else:
            image = request.images[0]
            files.append(("image", image.filename, image.content_type, await inputs.read(image)))
            generate = spec.path.startswith("generate/")
            if generate and (request.mask is not None or not spec.image_to_image):
                path = "edit/inpaint"
            elif generate:
                fields["strength"] = str(self.image_strength)
                if spec.sd3:
                    fields["model"] = spec.sd3
                    fields["mode"] = "image-to-image"
            if request.mask is not None and (path == "edit/inpaint" or spec.caps.mask):
                mask = await inputs.provider_mask(request.mask, "white")
                files.append(("mask", "mask.png", "image/png", mask))
        if request.output_format:
            fields["output_format"] = request.output_format
        if request.seed is not None:
            fields["seed"] = str(request.seed)
        return path, fields, files

    async def _post(
        self, path: str, fields: dict[str, str], files: list[tuple[str, str, str, bytes]]
    ) -> GeneratedImage:
        form = form_parts(list(fields.items()), files)  # always multipart, as Stability wants
        headers = {"Accept": "image/*"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        url = f"{self.base_url}/v2beta/stable-image/{path}"
        try:
            _, body, resp_headers = await self.send("POST", url, headers=headers, data=form)
        except UpstreamHTTPError as exc:
            if exc.status == 403 or (exc.status in (400, 422) and looks_like_policy(exc.message)):
                raise content_policy(self.name, exc.message) from None
            raise
        return self._image(body, resp_headers)

    def _image(self, body: bytes, headers: Any) -> GeneratedImage:
        content_type = str(headers.get("Content-Type", "")).split(";")[0].strip()
        finish = headers.get("finish-reason")
        if content_type == "application/json":
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise UpstreamConnectionError(f"{self.name}: response is not JSON") from None
            if not isinstance(doc, dict):
                raise UpstreamConnectionError(f"{self.name}: JSON response has no image")
            finish = doc.get("finish_reason", finish)
            if finish == "CONTENT_FILTERED":
                raise content_policy(self.name, "output was filtered by content moderation")
            if not isinstance(doc.get("image"), str):
                raise UpstreamConnectionError(f"{self.name}: JSON response has no image")
            return GeneratedImage(b64=doc["image"])
        if finish == "CONTENT_FILTERED":
            raise content_policy(self.name, "output was filtered by content moderation")
        kind = sniff_image(body[:16])
        if kind is None:
            raise UpstreamConnectionError(f"{self.name}: response is not an image")
        return GeneratedImage(data=body, mime=f"image/{kind}")
