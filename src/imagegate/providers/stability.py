"""Stability AI: Stable Image v2beta over multipart/form-data.

Wire format: https://platform.stability.ai/docs/api-reference (Stable Image → Generate:
``POST /v2beta/stable-image/generate/{ultra|core|sd3}``; Edit: ``edit/inpaint``, ``edit/erase``,
``edit/remove-background``; Control: ``control/sketch``, ``control/structure``).
``Authorization: Bearer <key>``, ``Accept: image/*`` (raw bytes; ``finish-reason`` and ``seed``
come back as headers). Every call returns one image, so ``n`` is fanned out, each call with
the next seed (``seed``, ``seed+1``...: the same seed twice would draw the same picture).

Translation: ``size`` → the nearest supported ``aspect_ratio``; ``output_format`` as given;
edits with a mask (or on Core, which has no image-to-image) go to ``edit/inpaint`` with the
OpenAI mask converted to Stability's white-is-edit mask; edits without a mask on Ultra/SD3 run
image-to-image with ``strength`` (config ``image_strength``, default 0.5). A 403 (content
moderation) or a ``CONTENT_FILTERED`` finish reason is a 400 ``content_policy_violation``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..config import ProviderConfig
from ..errors import UpstreamConnectionError
from ..request import GeneratedImage, ImageResult, Operation, UploadedFile, sniff_image
from .base import Capabilities
from .core.call import Answer, Call, Wire
from .core.policy import content_policy
from .core.polling import interval_option
from .core.sizes import aspect_ratio
from .core.spec import Calls, Errors, Inputs, Keys, Models, ModelSpec, ProviderSpec

RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
ALL_FORMATS = frozenset({"png", "jpeg", "webp"})
PNG_JPEG = frozenset({"png", "jpeg"})
GEN_EDIT: frozenset[Operation] = frozenset({"generations", "edits"})
EDIT: frozenset[Operation] = frozenset({"edits"})
FILTERED = "CONTENT_FILTERED"


@dataclass(frozen=True, slots=True)
class StabilityModel(ModelSpec):
    """One Stability model: its endpoint (under /v2beta/stable-image/) and what it takes."""

    path: str = ""
    sd3: str | None = None  # the sd3 endpoint's ``model`` field
    image_to_image: bool = False  # mask-less edits run image-to-image on this endpoint
    prompt: bool = True


def _gen(path: str, formats: frozenset[str], **extra: Any) -> StabilityModel:
    caps = Capabilities(operations=GEN_EDIT, output_formats=formats, mask=True)
    return StabilityModel(caps, path, **extra)


def _tool(
    path: str, formats: frozenset[str] = ALL_FORMATS, *, mask: bool = True, prompt: bool = True
) -> StabilityModel:
    caps = Capabilities(operations=EDIT, output_formats=formats, mask=mask)
    return StabilityModel(caps, path, prompt=prompt)


MODELS: dict[str, StabilityModel] = {
    "stable-image-ultra": _gen("generate/ultra", ALL_FORMATS, image_to_image=True),
    "stable-image-core": _gen("generate/core", ALL_FORMATS),
    **{
        name: _gen("generate/sd3", PNG_JPEG, sd3=name, image_to_image=True)
        for name in ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
    },
    "inpaint": _tool("edit/inpaint"),
    "erase": _tool("edit/erase", prompt=False),
    "remove-background": _tool(
        "edit/remove-background", frozenset({"png", "webp"}), mask=False, prompt=False
    ),
    "control-sketch": _tool("control/sketch", mask=False),
    "control-structure": _tool("control/structure", mask=False),
}
ALIASES = {"ultra": "stable-image-ultra", "core": "stable-image-core"}


def build(call: Call[StabilityModel]) -> Wire:
    request, entry = call.request, call.entry
    fields: dict[str, str] = {}
    files: list[tuple[str, UploadedFile]] = []
    path = entry.path
    if entry.prompt and request.prompt:
        fields["prompt"] = request.prompt
    mode = "text-to-image"
    if request.operation == "generations":
        fields["aspect_ratio"] = aspect_ratio(request.size, RATIOS)
    else:
        files.append(("image", request.images[0]))
        generate = path.startswith("generate/")
        if generate and (request.mask is not None or not entry.image_to_image):
            path = "edit/inpaint"
        elif generate:
            fields["strength"] = call.settings["image_strength"]
            mode = "image-to-image"
        if call.mask is not None:
            files.append(("mask", call.mask))
    if entry.sd3 and path == "generate/sd3":
        fields["model"] = entry.sd3
        fields["mode"] = mode
    if request.output_format:
        fields["output_format"] = request.output_format
    if call.seed is not None:
        fields["seed"] = str(call.seed)
    # always multipart, even without files, as Stability wants
    return Wire(f"/v2beta/stable-image/{path}", fields=list(fields.items()), files=files)


def parse(call: Call[StabilityModel], answer: Answer) -> ImageResult:
    return ImageResult(
        images=[_image(call.provider, answer)],
        created=int(time.time()),
        output_format=call.request.output_format,
    )


def _image(provider: str, answer: Answer) -> GeneratedImage:
    finish = answer.headers.get("finish-reason")
    if answer.content_type == "application/json":
        doc = answer.doc()
        if not isinstance(doc, dict):
            raise UpstreamConnectionError(f"{provider}: JSON response has no image")
        finish = doc.get("finish_reason", finish)
        if finish == FILTERED:
            raise content_policy(provider, "output was filtered by content moderation")
        if not isinstance(doc.get("image"), str):
            raise UpstreamConnectionError(f"{provider}: JSON response has no image")
        return GeneratedImage(b64=doc["image"])
    if finish == FILTERED:
        raise content_policy(provider, "output was filtered by content moderation")
    kind = sniff_image(answer.body[:16])
    if kind is None:
        raise UpstreamConnectionError(f"{provider}: response is not an image")
    return GeneratedImage(data=answer.body, mime=f"image/{kind}")


def setup(config: ProviderConfig) -> dict[str, Any]:
    return {"image_strength": str(min(1.0, interval_option(config.option("image_strength"), 0.5)))}


SPEC = ProviderSpec(
    type="stability",
    calls=Calls(build, parse),
    base_url="https://api.stability.ai",
    accept="image/*",
    # no OpenAI optional parameter is sent (``Models``' default), each is noted on the trace:
    # ``style_preset`` names looks like ``anime``, not OpenAI's vivid/natural
    models=Models(MODELS, aliases=ALIASES),
    inputs=Inputs(mask="white"),
    errors=Errors(refusal_statuses=frozenset({403})),  # its content moderation answer
    batch=1,
    keys=Keys(optional=frozenset({"image_strength"}), credentials=("api_key",)),
    setup=setup,
)
