"""Answers many providers share: OpenAI's images shape, token usage, merged fan-out results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import UpstreamConnectionError
from ...request import GeneratedImage, ImageResult


def openai_images(doc: Any, provider: str) -> ImageResult:
    """OpenAI's ``{created, data: [{b64_json | url, revised_prompt?}], usage?}`` (also spoken
    by Azure, xAI, Together and Recraft) → ``ImageResult``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise UpstreamConnectionError(f"{provider}: response has no data list")
    images = [
        GeneratedImage(
            b64=item.get("b64_json"), url=item.get("url"), revised_prompt=item.get("revised_prompt")
        )
        for item in doc["data"]
        if isinstance(item, dict)
    ]
    if not images or not all(i.b64 or i.url for i in images):
        raise UpstreamConnectionError(f"{provider}: response holds no image")
    created = doc.get("created")
    usage = doc.get("usage")
    return ImageResult(
        images=images,
        created=int(created) if isinstance(created, int | float) else None,
        usage=usage if isinstance(usage, dict) else None,
        output_format=doc.get("output_format"),
        size=doc.get("size"),
        quality=doc.get("quality"),
    )


def token_usage(parts: Iterable[Mapping[str, int]]) -> dict[str, Any] | None:
    """Sum per-call token counts into orq's ``usage`` (None when no call reported any)."""
    keys = ("input_tokens", "output_tokens", "total_tokens", "text_tokens", "image_tokens")
    total = dict.fromkeys(keys, 0)
    seen = False
    for part in parts:
        seen = True
        for key in keys:
            total[key] += int(part.get(key, 0))
    if not seen:
        return None
    return {
        "input_tokens": total["input_tokens"],
        "output_tokens": total["output_tokens"],
        "total_tokens": total["total_tokens"],
        "input_tokens_details": {
            "text_tokens": total["text_tokens"],
            "image_tokens": total["image_tokens"],
        },
    }


def _flat(usage: Mapping[str, Any]) -> dict[str, int]:
    details = usage.get("input_tokens_details")
    flat = {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}
    if isinstance(details, dict):
        flat.update({k: v for k, v in details.items() if isinstance(v, int)})
    return flat


def merge(results: list[ImageResult]) -> ImageResult:
    """The results of a request's parallel calls as one: every image in call order, usage
    summed, the rest from the first call."""
    first = results[0]
    usages = [_flat(r.usage) for r in results if r.usage]
    return ImageResult(
        images=[image for result in results for image in result.images],
        created=first.created,
        usage=token_usage(usages) if usages else None,
        output_format=first.output_format,
        size=first.size,
        quality=first.quality,
    )
