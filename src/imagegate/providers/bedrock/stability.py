"""Stability's models on Bedrock (SD3.5 Large, Stable Image Core and Ultra).

``{prompt, mode, aspect_ratio, output_format, seed}`` (or ``image`` and ``strength`` for
image-to-image) → ``{seeds, finish_reasons, images}``, one image per call:
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-stable-image-core-text-image-request-response.html

``size`` → the nearest aspect ratio; edits run image-to-image with ``strength`` (config
``image_strength``, default 0.5). A filtered answer may carry no ``images`` at all
(``{"finish_reasons": ["Filter reason: prompt"]}``), so the reasons are read first: a filter
reason is a 400 ``content_policy_violation`` (never retried), any other a 502 that may fall
back:
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-stable-ultra-text-image-request-response.html
"""

from __future__ import annotations

import time
from typing import Any

from ...request import GeneratedImage, ImageResult
from ..core import inputs
from ..core.call import Answer, Call
from ..core.failures import job_failed, no_image
from ..core.policy import content_policy
from ..core.sizes import aspect_ratio
from .models import BedrockModel

RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")


async def prepare(call: Call[BedrockModel]) -> None:
    call.images = [await inputs.b64(call.request.images[0])]


def body(call: Call[BedrockModel]) -> dict[str, Any]:
    request = call.request
    doc: dict[str, Any] = {"prompt": request.prompt or ""}
    if request.operation == "generations":
        doc["mode"] = "text-to-image"
        doc["aspect_ratio"] = aspect_ratio(request.size, RATIOS)
    else:
        doc["mode"] = "image-to-image"
        doc["image"] = call.images[0]
        doc["strength"] = call.settings["image_strength"]
    if request.output_format:
        doc["output_format"] = request.output_format
    if call.seed is not None:
        doc["seed"] = call.seed
    return doc


def parse(call: Call[BedrockModel], answer: Answer) -> ImageResult:
    doc = answer.doc()
    if not isinstance(doc, dict):
        raise no_image(call.provider)
    found = doc.get("finish_reasons")
    reasons = [str(r) for r in found if r] if isinstance(found, list) else []
    if reasons:
        why = "; ".join(reasons)[:500]
        if "filter" in why.lower():
            raise content_policy(call.provider, why)
        raise job_failed(call.provider, why)
    listed = doc.get("images")
    found = [b for b in listed if isinstance(b, str)] if isinstance(listed, list) else []
    if not found:
        raise no_image(call.provider)
    output_format = call.request.output_format
    mime = f"image/{output_format or 'png'}"
    return ImageResult(
        images=[GeneratedImage(b64=b, mime=mime) for b in found],
        created=int(time.time()),
        output_format=output_format,
    )
