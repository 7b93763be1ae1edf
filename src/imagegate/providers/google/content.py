"""Gemini ``generateContent`` with image output (the "Nano Banana" models): the request body
and the ``candidates`` answer, spoken by the Gemini API (``google/``) and Vertex AI
(``vertex/``) alike.

Docs: https://ai.google.dev/gemini-api/docs/image-generation and
https://ai.google.dev/api/generate-content (``GenerateContentRequest``/``Response``).

One call returns one image (the model table says ``batch=1``, so the runner fans ``n`` out
with ``seed``, ``seed+1``...). Translation: ``prompt`` → a text part; edit images →
``inlineData`` parts (base64 with their MIME type); ``size`` → ``imageConfig.aspectRatio``
(and ``imageSize`` 2K/4K on Gemini 3 when the longest side asks for it); ``seed`` →
``generationConfig.seed``. A blocked prompt or image (``BLOCKED``) is a 400
``content_policy_violation``; an answer without an image for any other reason (only text,
``IMAGE_OTHER``, ``NO_IMAGE``...) is a 502 the router may retry or fall back on.
"""

from __future__ import annotations

import time
from typing import Any

from ...errors import UpstreamConnectionError, UpstreamHTTPError
from ...request import GeneratedImage, ImageResult
from ..core.answers import token_usage
from ..core.call import Answer, Call
from ..core.policy import content_policy
from ..core.sizes import aspect_ratio, side_tier
from .models import GEMINI_RATIOS as RATIOS
from .models import GoogleModel

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


def generation_config(entry: GoogleModel, size: str | None, seed: int | None) -> dict[str, Any]:
    """``generationConfig``: the modalities, ``imageConfig`` for ``size``, and the seed."""
    config: dict[str, Any] = {"responseModalities": list(entry.modalities)}
    image_config: dict[str, str] = {}
    if size and size != "auto":
        image_config["aspectRatio"] = aspect_ratio(size, RATIOS)
        tier = side_tier(size, entry.tiers) if entry.tiers else None
        if tier is not None and tier != "1K":
            image_config["imageSize"] = tier
    if image_config:
        config["imageConfig"] = image_config
    if seed is not None:
        config["seed"] = seed
    return config


def body(call: Call[GoogleModel]) -> dict[str, Any]:
    """One ``GenerateContentRequest`` asking for one image (inputs base64: ``Inputs.encode``)."""
    request = call.request
    parts: list[dict[str, Any]] = [{"text": request.prompt or ""}]
    for upload, data in zip(request.images, call.images, strict=False):
        parts.append({"inlineData": {"mimeType": upload.content_type, "data": data}})
    config = generation_config(call.entry, request.size, call.seed)
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def usage(doc: dict[str, Any]) -> dict[str, int] | None:
    """``usageMetadata`` → token counts (prompt tokens split by modality)."""
    meta = doc.get("usageMetadata")
    if not isinstance(meta, dict):
        return None
    by_modality = {"TEXT": 0, "IMAGE": 0}
    for item in meta.get("promptTokensDetails") or []:
        if isinstance(item, dict) and item.get("modality") in by_modality:
            by_modality[item["modality"]] += _count(item.get("tokenCount"))
    prompt = _count(meta.get("promptTokenCount"))
    output = _count(meta.get("candidatesTokenCount"))
    return {
        "input_tokens": prompt,
        "output_tokens": output,
        "total_tokens": _count(meta.get("totalTokenCount")) or prompt + output,
        "text_tokens": by_modality["TEXT"],
        "image_tokens": by_modality["IMAGE"],
    }


def _count(value: Any) -> int:
    """A token count from the answer (anything else counts 0: a hostile answer is bounded)."""
    return value if isinstance(value, int) and 0 <= value < 1 << 40 else 0


def images_of(doc: Any, provider: str) -> list[GeneratedImage]:
    """Images from ``candidates[].content.parts[].inlineData``; a refusal or an answer
    without an image raises (see the module docstring)."""
    if not isinstance(doc, dict):
        raise UpstreamConnectionError(f"{provider}: generateContent answer is not an object")
    feedback = doc.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        raise content_policy(provider, f"prompt blocked ({str(feedback['blockReason'])[:100]})")
    images: list[GeneratedImage] = []
    texts: list[str] = []
    reasons: list[str] = []
    for cand in doc.get("candidates") or []:
        if not isinstance(cand, dict):
            continue
        if cand.get("finishReason"):
            reasons.append(str(cand["finishReason"])[:100])
        content = cand.get("content")
        for part in (content.get("parts") if isinstance(content, dict) else None) or []:
            if not isinstance(part, dict):
                continue
            inline = part.get("inlineData") or part.get("inline_data")
            if isinstance(inline, dict) and isinstance(inline.get("data"), str) and inline["data"]:
                mime = inline.get("mimeType") or inline.get("mime_type")
                images.append(GeneratedImage(b64=inline["data"], mime=mime))
            elif isinstance(part.get("text"), str) and not part.get("thought"):
                texts.append(part["text"])
    if images:
        return images
    blocked = [r for r in reasons if r in BLOCKED]
    if blocked:
        raise content_policy(provider, f"image blocked ({', '.join(blocked)})")
    said = " ".join(texts).strip()[:300]
    raise UpstreamHTTPError(
        f"{provider}: the model answered without an image"
        + (f": {said}" if said else f" (finishReason {', '.join(reasons[:5]) or 'none'})"),
        status=502,
    )


def parse(call: Call[GoogleModel], answer: Answer) -> ImageResult:
    """One call's image and its token usage (the runner sums the usage of parallel calls)."""
    doc = answer.doc()
    images = images_of(doc, call.provider)[:1]
    counts = usage(doc)
    return ImageResult(
        images=images,
        created=int(time.time()),
        usage=token_usage([counts]) if counts is not None else None,
        output_format="png",
    )
