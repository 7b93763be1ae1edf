"""Titan Image Generator and Nova Canvas on Bedrock: one body shape for both.

``taskType`` ``TEXT_IMAGE`` / ``INPAINTING`` / ``IMAGE_VARIATION`` with
``imageGenerationConfig`` ``{numberOfImages ≤ 5, width, height, quality, seed}``; the answer is
``{"images": [base64], "error"}``
(https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html,
https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html).

Translation: Titan's fixed sizes (the nearest to the asked size), Nova any size brought into its
rules (``models.nova_size``); ``quality`` hd/high → ``premium``, standard/medium/low →
``standard`` (``models.AMAZON_QUALITY``). Edits with a mask (or an image
with transparent pixels) are ``INPAINTING`` with the mask black-is-edit and the image sent
opaque; without one they are ``IMAGE_VARIATION`` guided by the prompt (``images.py``). The
runner gives each parallel call its own seed (``seed``, ``seed+1``...); on Nova the offset
wraps within its seed range.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from ...request import GeneratedImage, ImageRequest, ImageResult
from ..core.call import Answer, Call
from ..core.failures import job_failed, no_image
from ..core.params import value
from ..core.policy import content_policy, is_policy
from ..core.sizes import nearest_size
from . import images
from .models import AMAZON_PARAMS, NOVA_MAX_SEED, TITAN_SIZES, BedrockModel, nova_size


async def prepare(call: Call[BedrockModel]) -> None:
    """Inputs without transparent pixels and the black-is-edit mask, once per request."""
    request = call.request
    mask = None
    if request.operation == "edits":
        mask = await images.edit_mask(request.images[0], request.mask)
    if mask is not None:
        call.images = [await images.opaque_b64(request.images[0])]
        call.mask_text = base64.b64encode(mask).decode("ascii")
    else:
        call.images = [await images.opaque_b64(upload) for upload in request.images]


def dimensions(entry: BedrockModel, request: ImageRequest) -> tuple[int, int]:
    """The width and height a generation asks for."""
    if entry.family == "titan":
        return nearest_size(request.size, TITAN_SIZES)
    return nova_size(request.size)


def wrapped_seed(entry: BedrockModel, seed: int | None) -> int | None:
    """The call's seed; on Nova ``seed+i`` wraps round to 0 instead of leaving its range
    (the caller's own seed was checked against it by the routing plan)."""
    if seed is None or entry.family != "nova":
        return seed
    return seed % (NOVA_MAX_SEED + 1)


def body(call: Call[BedrockModel]) -> dict[str, Any]:
    request = call.request
    config: dict[str, Any] = {}
    quality = value(AMAZON_PARAMS, "quality", request)
    if quality is not None:
        config["quality"] = quality
    config["numberOfImages"] = call.count
    seed = wrapped_seed(call.entry, call.seed)
    if seed is not None:
        config["seed"] = seed
    task: dict[str, Any]
    if request.operation == "generations":
        config["width"], config["height"] = dimensions(call.entry, request)
        task = {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": request.prompt or ""}}
    elif call.mask_text is not None:
        inpaint = {"image": call.images[0], "maskImage": call.mask_text}
        if request.prompt:
            inpaint["text"] = request.prompt
        task = {"taskType": "INPAINTING", "inPaintingParams": inpaint}
    else:
        variation: dict[str, Any] = {"images": list(call.images)}
        if request.prompt:
            variation["text"] = request.prompt
        task = {"taskType": "IMAGE_VARIATION", "imageVariationParams": variation}
    return {**task, "imageGenerationConfig": config}


def parse(call: Call[BedrockModel], answer: Answer) -> ImageResult:
    doc = answer.doc()
    if isinstance(doc, dict) and doc.get("error"):
        message = str(doc["error"])[:500]
        if is_policy(message):
            raise content_policy(call.provider, message)
        raise job_failed(call.provider, message)
    listed = doc.get("images") if isinstance(doc, dict) else None
    found = [b for b in listed if isinstance(b, str)] if isinstance(listed, list) else []
    if not found:
        raise no_image(call.provider)
    request = call.request
    size = None
    if request.operation == "generations":
        size = "{}x{}".format(*dimensions(call.entry, request))
    return ImageResult(
        images=[GeneratedImage(b64=b, mime="image/png") for b in found],
        created=int(time.time()),
        output_format="png",
        size=size,
    )
