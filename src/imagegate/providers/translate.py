"""Helpers for adapters whose wire format is not OpenAI's: sizes by aspect ratio, batching,
inline images, masks, token usage and error remapping.

Providers that take an aspect ratio instead of ``WxH`` still declare their sizes as a set, so
the routing plan can skip them; ``RatioSizes`` is that set for a rule rather than a list::

    sizes = RatioSizes(("1:1", "16:9"), native=("1344x768",))
    "1920x1080" in sizes   # True: 16:9 exactly
    "1536x1024" in sizes   # True: an OpenAI size is always translated (to the nearest ratio)
    "4096x512" in sizes    # False: 8:1 is nowhere near a ratio the model renders
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

from PIL import Image

from .. import imaging
from ..errors import UpstreamHTTPError
from ..request import UploadedFile
from .failures import invalid_input
from .http import CONTENT_POLICY_MARKERS
from .inputs import is_missing, remember, remembered, too_many_pixels

# Every size the OpenAI images API accepts for some model.
OPENAI_SIZES = frozenset(
    {"256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792"}
)
POLICY_MARKERS = (
    *CONTENT_POLICY_MARKERS,
    "content filter",
    "contentfilter",
    "content moderation",
    "flagged",
)


def _wh(size: str) -> tuple[int, int] | None:
    w, sep, h = size.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) == 0 or int(h) == 0:
        return None
    return int(w), int(h)


def _ratio(ratio: str) -> float:
    a, _, b = ratio.partition(":")
    return float(a) / float(b)


class RatioSizes(frozenset[str]):
    """The sizes a model that renders fixed aspect ratios can serve.

    Members: ``auto``, every OpenAI size (translated to the nearest ratio), the model's
    native sizes, and any ``WxH`` within ``tolerance`` (relative) of one of ``ratios``.
    Iterating yields only the listed sizes; membership applies the rule.
    """

    ratios: tuple[str, ...]
    tolerance: float

    def __new__(
        cls, ratios: Iterable[str], native: Iterable[str] = (), tolerance: float = 0.05
    ) -> RatioSizes:
        self = super().__new__(cls, {"auto", *OPENAI_SIZES, *native})
        self.ratios = tuple(ratios)
        self.tolerance = tolerance
        return self

    def __contains__(self, size: object) -> bool:
        if frozenset.__contains__(self, size):
            return True
        if not isinstance(size, str):
            return False
        wh = _wh(size)
        if wh is None:
            return False
        target = wh[0] / wh[1]
        return any(abs(target / _ratio(r) - 1) <= self.tolerance for r in self.ratios)


def batches(n: int, per_call: int) -> list[int]:
    """How many images each call asks for: ``batches(6, 4) == [4, 2]``."""
    per_call = max(1, per_call)
    full, rest = divmod(max(1, n), per_call)
    return [per_call] * full + ([rest] if rest else [])


def side_tier(size: str | None, tiers: tuple[tuple[int, str], ...]) -> str | None:
    """The first tier label whose limit covers the longest side (``"2K"`` for 2048x2048)."""
    wh = _wh(size) if size else None
    if wh is None:
        return None
    longest = max(wh)
    for limit, label in tiers:
        if longest <= limit:
            return label
    return tiers[-1][1]


async def edit_mask_png(mask: UploadedFile | None, image: UploadedFile) -> bytes:
    """An OpenAI mask (transparent = edit here) as a black/white PNG (white = edit here).

    Without a mask the whole image may change (OpenAI's semantics), so the mask is all white.
    A mask without an alpha channel is taken as already black/white. Runs on the Pillow pool,
    made once per request: retries and fallbacks reuse it.
    """
    owner, key = (mask, "edit_mask") if mask is not None else (image, "edit_mask_all")
    png: bytes = remembered(owner, key)
    if is_missing(png):
        png = await imaging.run(_edit_mask, mask, image)
        remember(owner, key, png)
    return png


def _edit_mask(mask: UploadedFile | None, image: UploadedFile) -> bytes:
    source = mask if mask is not None else image
    try:
        with source.open() as fh:
            src = imaging.open_image(fh, source.field)
            if mask is None:
                canvas = Image.new("L", src.size, 255)
            else:
                src.load()
                if src.mode in ("RGBA", "LA", "PA") or "transparency" in src.info:
                    alpha = src.convert("RGBA").getchannel("A")
                    canvas = alpha.point(lambda a: 255 if a < 128 else 0)
                else:
                    canvas = src.convert("L").point(lambda v: 255 if v >= 128 else 0)
    except imaging.ImageRejected as exc:
        raise too_many_pixels(exc, source.field) from None
    except (OSError, ValueError, SyntaxError):
        raise invalid_input(f"{source.field} is not a readable image", source.field) from None
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()


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


def is_policy_message(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in POLICY_MARKERS)


def remap_policy(exc: UpstreamHTTPError, statuses: tuple[int, ...] = (400, 422)) -> None:
    """Providers that answer a moderation refusal with 422 (or an unmarked 400) → 400 policy."""
    if exc.status in statuses and is_policy_message(exc.message):
        exc.status = 400
        exc.code = "content_policy_violation"
