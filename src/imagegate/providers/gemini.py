"""Gemini ``generateContent`` with image output (the "Nano Banana" models): request body,
capabilities and the ``candidates`` answer. Shared by ``google/`` and ``vertex/``.

Docs: https://ai.google.dev/gemini-api/docs/image-generation and
https://ai.google.dev/api/generate-content (``GenerateContentRequest``/``Response``).

One call returns one image, so ``n`` is fanned out by the provider. Translation: ``prompt`` →
a text part; edit images → ``inlineData`` parts (base64 with their MIME type); ``size`` →
``imageConfig.aspectRatio`` (and ``imageSize`` 2K/4K on Gemini 3 when the longest side asks for
it); ``seed`` → ``generationConfig.seed``. A blocked prompt or image (``BLOCKED``) is a 400
``content_policy_violation``; an answer without an image for any other reason (only text,
``IMAGE_OTHER``, ``NO_IMAGE``...) is a 502 the router may retry or fall back on.
"""

from __future__ import annotations

from typing import Any

from ..errors import UpstreamConnectionError, UpstreamHTTPError
from ..request import GeneratedImage, ImageRequest
from . import inputs
from .base import Capabilities
from .failures import content_policy
from .sizes import aspect_ratio
from .translate import RatioSizes, side_tier

RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
NATIVE = (
    "1024x1024", "832x1248", "1248x832", "864x1184", "1184x864", "896x1152", "1152x896",
    "768x1344", "1344x768", "1536x672",
)  # fmt: skip
SIZES = RatioSizes(RATIOS, NATIVE)
# Finish reasons that mean a filter refused the prompt or the picture (400 content policy), from
# the SDK's ``FinishReason`` enum (https://github.com/googleapis/python-genai, ``types.py``). Any
# other reason without an image is a 502 the router may retry: ``IMAGE_OTHER`` ("stopped for a
# reason not otherwise specified"), ``NO_IMAGE``, ``OTHER``, ``MAX_TOKENS``, ``LANGUAGE``...
BLOCKED = frozenset(
    {
        "SAFETY",  # content potentially contains safety violations
        "IMAGE_SAFETY",  # generated images have safety violations
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",  # forbidden terms
        "SPII",  # sensitive personally identifiable information
        "RECITATION",  # may be a recitation from a source: a filter, not a glitch
        "IMAGE_RECITATION",
    }
)
NO_IMAGES = Capabilities(operations=frozenset())


def is_gemini3(model: str) -> bool:
    return model.startswith("gemini-3")


def capabilities(model: str) -> Capabilities:
    """Image-output Gemini models edit too (no mask); other Gemini models make no images."""
    if "image" not in model:
        return NO_IMAGES
    return Capabilities(
        operations=frozenset({"generations", "edits"}),
        sizes=SIZES,
        max_n=10,
        output_formats=frozenset({"png"}),
        max_images=14 if is_gemini3(model) else 3,
        mask=False,
    )


async def inline_images(request: ImageRequest) -> list[dict[str, Any]]:
    """The input images as ``inlineData`` parts: encoded once per request, off the loop."""
    return [
        {"inlineData": {"mimeType": upload.content_type, "data": await inputs.b64(upload)}}
        for upload in request.images
    ]


def request_body(model: str, request: ImageRequest, images: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``GenerateContentRequest`` asking for one image (``images``: ``inline_images``)."""
    parts: list[dict[str, Any]] = [{"text": request.prompt or ""}, *images]
    modalities = ["TEXT", "IMAGE"] if "2.0" in model else ["IMAGE"]
    config: dict[str, Any] = {"responseModalities": modalities}
    image_config: dict[str, str] = {}
    if request.size and request.size != "auto":
        image_config["aspectRatio"] = aspect_ratio(request.size, RATIOS)
        if is_gemini3(model):
            tier = side_tier(request.size, ((1536, "1K"), (3072, "2K"), (8192, "4K")))
            if tier and tier != "1K":
                image_config["imageSize"] = tier
    if image_config:
        config["imageConfig"] = image_config
    if request.seed is not None:
        config["seed"] = request.seed
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def _usage(doc: dict[str, Any]) -> dict[str, int] | None:
    meta = doc.get("usageMetadata")
    if not isinstance(meta, dict):
        return None
    by_modality = {"TEXT": 0, "IMAGE": 0}
    for item in meta.get("promptTokensDetails") or []:
        if isinstance(item, dict) and item.get("modality") in by_modality:
            by_modality[item["modality"]] += int(item.get("tokenCount") or 0)
    prompt = int(meta.get("promptTokenCount") or 0)
    output = int(meta.get("candidatesTokenCount") or 0)
    return {
        "input_tokens": prompt,
        "output_tokens": output,
        "total_tokens": int(meta.get("totalTokenCount") or prompt + output),
        "text_tokens": by_modality["TEXT"],
        "image_tokens": by_modality["IMAGE"],
    }


def parse_response(doc: Any, provider: str) -> tuple[list[GeneratedImage], dict[str, int] | None]:
    """Images from ``candidates[].content.parts[].inlineData`` and the call's token usage."""
    if not isinstance(doc, dict):
        raise UpstreamConnectionError(f"{provider}: generateContent answer is not an object")
    feedback = doc.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        raise content_policy(provider, f"prompt blocked ({feedback['blockReason']})")
    images: list[GeneratedImage] = []
    texts: list[str] = []
    reasons: list[str] = []
    for cand in doc.get("candidates") or []:
        if not isinstance(cand, dict):
            continue
        if cand.get("finishReason"):
            reasons.append(str(cand["finishReason"]))
        content = cand.get("content")
        for part in (content.get("parts") if isinstance(content, dict) else None) or []:
            if not isinstance(part, dict):
                continue
            inline = part.get("inlineData") or part.get("inline_data")
            if isinstance(inline, dict) and inline.get("data"):
                mime = inline.get("mimeType") or inline.get("mime_type")
                images.append(GeneratedImage(b64=str(inline["data"]), mime=mime))
            elif isinstance(part.get("text"), str) and not part.get("thought"):
                texts.append(part["text"])
    if images:
        return images, _usage(doc)
    blocked = [r for r in reasons if r in BLOCKED]
    if blocked:
        raise content_policy(provider, f"image blocked ({', '.join(blocked)})")
    said = " ".join(texts).strip()[:300]
    raise UpstreamHTTPError(
        f"{provider}: the model answered without an image"
        + (f": {said}" if said else f" (finishReason {', '.join(reasons) or 'none'})"),
        status=502,
    )
