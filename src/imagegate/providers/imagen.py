"""Imagen's ``predict`` wire format, shared by Vertex AI (``vertex/``) and the Gemini API
(``google/imagen-*``): request bodies, capabilities and the ``predictions`` answer.

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
asks for more than 1536 px on models that render it); ``n`` → ``sampleCount`` in batches of 4
(1 for Ultra); ``output_format``/``output_compression`` → ``outputOptions``; ``seed`` → ``seed``
with the watermark off (Imagen refuses a seed otherwise; Vertex only). An OpenAI mask
(transparent = edit) becomes Imagen's black/white mask (white = edit); no mask means the whole
image may change.
"""

from __future__ import annotations

import base64
from typing import Any

from ..errors import UpstreamConnectionError
from ..request import GeneratedImage, ImageRequest
from .base import Capabilities
from .failures import content_policy
from .sizes import aspect_ratio
from .translate import RatioSizes, side_tier

RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
NATIVE = (
    "1024x1024", "896x1280", "1280x896", "768x1408", "1408x768",
    "2048x2048", "1792x2560", "2560x1792", "1536x2816", "2816x1536",
)  # fmt: skip
SIZES = RatioSizes(RATIOS, NATIVE)
TWO_K_MODELS = ("imagen-4.0-generate-001", "imagen-4.0-ultra-generate-001")
MIME = {"png": "image/png", "jpeg": "image/jpeg"}


def is_imagen(model: str) -> bool:
    return model.startswith("imagen") or model.startswith("imagegeneration")


def is_edit_model(model: str) -> bool:
    return "capability" in model


def per_call(model: str) -> int:
    """Images one ``predict`` may return (``sampleCount`` 1–4; Ultra renders one)."""
    return 1 if "ultra" in model else 4


def capabilities(model: str, *, vertex: bool) -> Capabilities:
    formats = frozenset(MIME)  # png and jpeg through ``outputOptions`` on both APIs
    if is_edit_model(model):
        return Capabilities(
            operations=frozenset({"edits"}) if vertex else frozenset(),
            sizes=None,  # the output keeps the input image's dimensions
            max_n=10,
            output_formats=formats,
            max_images=1,
            mask=True,
        )
    return Capabilities(
        operations=frozenset({"generations"}), sizes=SIZES, max_n=10, output_formats=formats
    )


def _common(
    model: str, request: ImageRequest, count: int, vertex: bool, extra: dict[str, Any]
) -> dict[str, Any]:
    params: dict[str, Any] = {"sampleCount": count, "includeRaiReason": True}
    if request.output_format in MIME:
        options: dict[str, Any] = {"mimeType": MIME[request.output_format]}
        if request.output_format == "jpeg" and request.output_compression is not None:
            options["compressionQuality"] = request.output_compression
        params["outputOptions"] = options
    if vertex and request.seed is not None:
        params["seed"] = request.seed
        params["addWatermark"] = False
    params.update(extra)
    return params


def generate_body(
    model: str,
    request: ImageRequest,
    count: int,
    *,
    vertex: bool,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``{instances: [{prompt}], parameters: {sampleCount, aspectRatio, ...}}``."""
    params = _common(model, request, count, vertex, {})
    if request.size and request.size != "auto":
        params["aspectRatio"] = aspect_ratio(request.size, RATIOS)
        if model in TWO_K_MODELS and side_tier(request.size, ((1536, "1K"), (4096, "2K"))) == "2K":
            params["sampleImageSize"] = "2K"
    params.update(extra or {})
    return {"instances": [{"prompt": request.prompt or ""}], "parameters": params}


def edit_body(
    request: ImageRequest,
    count: int,
    image_b64: str,
    mask_png: bytes,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Mask editing (inpaint insertion) on ``imagen-3.0-capability-001``."""
    raw = {
        "referenceType": "REFERENCE_TYPE_RAW",
        "referenceId": 1,
        "referenceImage": {"bytesBase64Encoded": image_b64},
    }
    mask = {
        "referenceType": "REFERENCE_TYPE_MASK",
        "referenceId": 2,
        "referenceImage": {"bytesBase64Encoded": base64.b64encode(mask_png).decode("ascii")},
        "maskImageConfig": {"maskMode": "MASK_MODE_USER_PROVIDED", "dilation": 0.01},
    }
    params = _common("", request, count, True, {"editMode": "EDIT_MODE_INPAINT_INSERTION"})
    params.update(extra or {})
    instance = {"prompt": request.prompt or "", "referenceImages": [raw, mask]}
    return {"instances": [instance], "parameters": params}


def parse_predictions(doc: Any, provider: str) -> list[GeneratedImage]:
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
            images.append(GeneratedImage(b64=data, mime=item.get("mimeType")))
        elif item.get("raiFilteredReason"):
            reasons.append(str(item["raiFilteredReason"]))
    if not images:
        why = "; ".join(reasons) or "no image returned (filtered by the safety system)"
        raise content_policy(provider, why)
    return images
