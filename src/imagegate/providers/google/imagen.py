"""Imagen's ``predict`` wire format, spoken by Vertex AI (``vertex/``) and the Gemini API
(``google/imagen-*``): request bodies and the ``predictions`` answer.

Docs: https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api
(generation), .../imagen-api-edit (mask editing with ``imagen-3.0-capability-001``) and
https://ai.google.dev/gemini-api/docs/imagen (the Gemini API flavour). Both flavours name the
2K switch ``sampleImageSize`` and take ``outputOptions`` and ``includeRaiReason``; the Gemini
API refuses ``seed``, ``addWatermark``, ``negativePrompt`` and ``enhancePrompt``. Evidence: the
python-genai SDK's ``_GenerateImagesConfig_to_mldev`` (Gemini API) and ``..._to_vertex`` in
``google/genai/models.py``; the Gemini API one was removed when the SDK made
``generate_images`` Vertex-only:
https://github.com/googleapis/python-genai/commit/43ef621ffafde6b9a4591188a98d479a0c55d679

Translation: ``size`` → the nearest of Imagen's aspect ratios (and ``2K`` when the longest side
asks for more than 1536 px on models that render it); ``n`` → ``sampleCount`` (the runner
splits ``n`` into calls of the model's ``batch``: 4, 1 for Ultra); ``output_format`` /
``output_compression`` → ``outputOptions``; ``seed`` → ``seed`` with the watermark off (Imagen
refuses a seed otherwise; Vertex only), ``seed+1`` on the next parallel call. An OpenAI mask
(transparent = edit) becomes Imagen's black/white mask (white = edit, ``spec.inputs.mask``); no mask
means the whole image may change. The config's ``parameters`` are merged in last.
"""

from __future__ import annotations

import time
from typing import Any

from ...errors import UpstreamConnectionError
from ...request import GeneratedImage, ImageResult
from ..core.call import Answer, Call
from ..core.params import value
from ..core.policy import content_policy
from ..core.sizes import aspect_ratio, side_tier
from .models import IMAGEN_PARAMS, IMAGEN_RATIOS, GoogleModel

MIME = {"png": "image/png", "jpeg": "image/jpeg"}


def parameters(call: Call[GoogleModel], *, vertex: bool) -> dict[str, Any]:
    """The ``parameters`` every predict call carries: count, output options, seed."""
    request = call.request
    params: dict[str, Any] = {"sampleCount": call.count, "includeRaiReason": True}
    if request.output_format in MIME:
        options: dict[str, Any] = {"mimeType": MIME[request.output_format]}
        quality = value(IMAGEN_PARAMS, "output_compression", request)
        if quality is not None:
            options["compressionQuality"] = quality
        params["outputOptions"] = options
    if vertex and call.seed is not None:
        params["seed"] = call.seed
        params["addWatermark"] = False
    return params


def size_parameters(entry: GoogleModel, size: str | None) -> dict[str, str]:
    """``size`` as Imagen asks for it: the nearest ``aspectRatio``, and ``sampleImageSize``
    2K when the longest side needs more than 1K on a model that renders 2K."""
    if not size or size == "auto":
        return {}
    found = {"aspectRatio": aspect_ratio(size, IMAGEN_RATIOS)}
    if entry.tiers and side_tier(size, entry.tiers) == "2K":
        found["sampleImageSize"] = "2K"
    return found


def generate_body(call: Call[GoogleModel], *, vertex: bool) -> dict[str, Any]:
    """``{instances: [{prompt}], parameters: {sampleCount, aspectRatio, ...}}``."""
    request = call.request
    params = parameters(call, vertex=vertex)
    params.update(size_parameters(call.entry, request.size))
    params.update(call.settings["parameters"])
    return {"instances": [{"prompt": request.prompt or ""}], "parameters": params}


def edit_body(call: Call[GoogleModel]) -> dict[str, Any]:
    """Mask editing (inpaint insertion) on ``imagen-3.0-capability-001``: the image and the
    white-is-edit mask (both base64, made once per request) as reference images."""
    assert call.mask_text is not None  # the runner's mask, or ``vertex.prepare``'s blank one
    raw = {
        "referenceType": "REFERENCE_TYPE_RAW",
        "referenceId": 1,
        "referenceImage": {"bytesBase64Encoded": call.images[0]},
    }
    mask = {
        "referenceType": "REFERENCE_TYPE_MASK",
        "referenceId": 2,
        "referenceImage": {"bytesBase64Encoded": call.mask_text},
        "maskImageConfig": {"maskMode": "MASK_MODE_USER_PROVIDED", "dilation": 0.01},
    }
    params = parameters(call, vertex=True)
    params["editMode"] = "EDIT_MODE_INPAINT_INSERTION"
    params.update(call.settings["parameters"])
    instance = {"prompt": call.request.prompt or "", "referenceImages": [raw, mask]}
    return {"instances": [instance], "parameters": params}


def images_of(doc: Any, provider: str) -> list[GeneratedImage]:
    """``predictions[].bytesBase64Encoded`` → images; all filtered → 400 content policy."""
    if not isinstance(doc, dict):
        raise UpstreamConnectionError(f"{provider}: predict answer is not a JSON object")
    predictions = doc.get("predictions") or []
    images: list[GeneratedImage] = []
    reasons: list[str] = []
    for item in predictions if isinstance(predictions, list) else []:
        if not isinstance(item, dict):
            continue
        data = item.get("bytesBase64Encoded")
        if isinstance(data, str) and data:
            mime = item.get("mimeType")
            images.append(GeneratedImage(b64=data, mime=mime if isinstance(mime, str) else None))
        elif item.get("raiFilteredReason"):
            reasons.append(str(item["raiFilteredReason"])[:300])
    if not images:
        why = "; ".join(reasons[:4]) or "no image returned (filtered by the safety system)"
        raise content_policy(provider, why)
    return images


def parse(call: Call[GoogleModel], answer: Answer) -> ImageResult:
    return ImageResult(
        images=images_of(answer.doc(), call.provider),
        created=int(time.time()),
        output_format=call.request.output_format or "png",
    )
