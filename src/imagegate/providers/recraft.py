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
from dataclasses import dataclass
from typing import Any

from ..config import ProviderConfig
from ..request import GeneratedImage, ImageResult, sniff_image
from .base import Capabilities
from .core.answers import openai_images
from .core.call import Answer, Call, Wire
from .core.polling import interval_option
from .core.sizes import RatioSizes, nearest_size, split_wh
from .core.spec import Calls, Inputs, Keys, Models, ModelSpec, ProviderSpec

RATIOS = (
    "1:1",
    "2:1",
    "1:2",
    "3:2",
    "2:3",
    "4:3",
    "3:4",
    "5:4",
    "4:5",
    "6:10",
    "14:10",
    "10:14",
    "16:9",
    "9:16",
)
V3_SIZES = (
    "1024x1024",
    "2048x1024",
    "1024x2048",
    "1536x1024",
    "1024x1536",
    "1365x1024",
    "1024x1365",
    "1280x1024",
    "1024x1280",
    "1024x1707",
    "1434x1024",
    "1024x1434",
    "1820x1024",
    "1024x1820",
)
V4_SIZES = (
    "1024x1024",
    "1536x768",
    "768x1536",
    "1280x832",
    "832x1280",
    "1216x896",
    "896x1216",
    "1152x896",
    "896x1152",
    "832x1344",
    "1280x896",
    "896x1280",
    "1344x768",
    "768x1344",
)
V4_PRO_SIZES = (
    "2048x2048",
    "3072x1536",
    "1536x3072",
    "2560x1664",
    "1664x2560",
    "2432x1792",
    "1792x2432",
    "2304x1792",
    "1792x2304",
    "1664x2688",
    "2560x1792",
    "1792x2560",
    "2688x1536",
    "1536x2688",
)


@dataclass(frozen=True, slots=True)
class RecraftModel(ModelSpec):
    native: tuple[str, ...] = ()  # the sizes the model renders
    styled: bool = True  # takes the configured ``style`` (V4 takes none)


def _family(native: tuple[str, ...], *, styled: bool) -> RecraftModel:
    caps = Capabilities(
        operations=frozenset({"generations", "edits", "variations"}),
        sizes=RatioSizes(RATIOS, native),
        max_n=10,
        output_formats=frozenset(),
        max_images=1,
        mask=True,
    )
    return RecraftModel(caps, native=native, styled=styled)


V3 = _family(V3_SIZES, styled=True)
V4 = _family(V4_SIZES, styled=False)
V4_PRO = _family(V4_PRO_SIZES, styled=False)


def match(model: str) -> RecraftModel:
    if model.endswith("vector"):
        why = f"{model!r} is a vector model: it answers SVG, which this gateway does not serve"
        return RecraftModel(Capabilities.nothing(why))
    if model.startswith("recraftv4"):
        return V4_PRO if "pro" in model else V4
    return V3


def native_size(entry: RecraftModel, size: str | None) -> str | None:
    """The model's own size for ``size``: itself when listed, else the nearest listed one."""
    if not size or size == "auto":
        return None
    if size in entry.native:
        return size
    pairs = tuple(wh for s in entry.native if (wh := split_wh(s)) is not None)
    w, h = nearest_size(size, pairs)
    return f"{w}x{h}"


def build(call: Call[RecraftModel]) -> Wire:
    request, entry, operation = call.request, call.entry, call.request.operation
    out: dict[str, Any] = {"n": call.count, "response_format": "b64_json"}
    if operation != "variations":
        out["model"] = call.model
        out["prompt"] = request.prompt or ""
        if entry.styled and call.settings["style"]:
            out["style"] = call.settings["style"]
    size = native_size(entry, request.size)
    if size and operation != "edits":
        out["size"] = size
    if operation == "edits" and call.mask is None:
        out["strength"] = call.settings["strength"]
    if operation == "generations":
        return Wire("/images/generations", json=out)
    if operation == "variations":
        path = "/images/variateImage"
    else:
        path = "/images/inpaint" if call.mask is not None else "/images/imageToImage"
    files = [("image", request.images[0])]
    if call.mask is not None:
        files.append(("mask", call.mask))
    return Wire(path, fields=[(key, str(value)) for key, value in out.items()], files=files)


def _kind(image: GeneratedImage) -> str | None:
    """The file format Recraft chose, from the first bytes (b64 decoded only that far)."""
    if image.b64:
        return sniff_image(base64.b64decode(image.b64[:24]))
    raw = image.raw()
    return sniff_image(raw[:16]) if raw else None


def parse(call: Call[RecraftModel], answer: Answer) -> ImageResult:
    images = openai_images(answer.doc(), call.provider).images
    kinds = [_kind(image) for image in images]
    for image, kind in zip(images, kinds, strict=True):
        image.mime = f"image/{kind}" if kind else image.mime
    return ImageResult(images=images, output_format=kinds[0])


def setup(config: ProviderConfig) -> dict[str, Any]:
    style = config.option("style")
    return {
        "style": str(style) if style else None,
        "strength": min(1.0, interval_option(config.option("strength"), 0.5)),
    }


SPEC = ProviderSpec(
    type="recraft",
    calls=Calls(build, parse),
    base_url="https://external.api.recraft.ai/v1",
    # no OpenAI optional parameter is sent (``Models``' default), each is noted on the trace:
    # its ``style`` names Recraft's own styles, not OpenAI's vivid/natural
    models=Models(match=match),
    inputs=Inputs(mask="white"),
    batch=6,
    keys=Keys(optional=frozenset({"style", "strength"}), credentials=("api_key",)),
    setup=setup,
)
