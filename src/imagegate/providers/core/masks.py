"""Masks in each provider's convention, converted by one function.

Why: OpenAI's edit contract marks the area to change with *transparent* mask pixels (or, with
no mask, transparent pixels of the image). Most other providers want an opaque mask where
*white* means "change this" (Stability, Recraft, BFL Fill, fal, Replicate, Vertex); Amazon
Titan and Nova Canvas want *black* for it. A mask without transparency is taken as already
opaque (white = edit). Conversions run on the Pillow pool (``imaging``) with the pixel cap
checked before decoding, and are remembered on the upload: made once per request.
"""

from __future__ import annotations

import io
from typing import Literal

from PIL import Image

from ... import imaging
from ...request import UploadedFile
from .failures import invalid_input
from .inputs import is_missing, read, remember, remembered, too_many_pixels

EditColour = Literal["white", "black"]
# How a provider wants the area to edit marked: as the caller sent it (OpenAI's transparent
# pixels), white or black on an opaque mask, or not at all (the provider takes no mask).
MaskStyle = Literal["transparent", "white", "black", "none"]


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info


def _open(raw: bytes, what: str) -> Image.Image:
    try:
        img = imaging.open_image(io.BytesIO(raw), what)
        img.load()
    except imaging.ImageRejected as exc:
        raise too_many_pixels(exc, what) from None
    except Exception:
        raise invalid_input(f"{what} is not a readable image", what) from None
    return img


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _convert_mask(raw: bytes, edit: EditColour, what: str = "mask") -> bytes:
    """The one conversion: an OpenAI mask (or an opaque one) → ``edit``-coloured = change."""
    img = _open(raw, what)
    if _has_alpha(img):
        alpha = img.convert("RGBA").getchannel("A")
        white_edit = alpha.point(lambda a: 255 if a < 128 else 0)  # transparent = edit
    else:
        white_edit = img.convert("L").point(lambda v: 255 if v >= 128 else 0)
    out = white_edit if edit == "white" else white_edit.point(lambda v: 255 - v)
    return _png(out.convert("L"))


def _alpha_mask(raw: bytes, edit: EditColour, what: str) -> bytes | None:
    try:
        img = imaging.open_image(io.BytesIO(raw), what)
    except imaging.ImageRejected as exc:
        raise too_many_pixels(exc, what) from None
    except Exception:
        return None
    if not _has_alpha(img):
        return None
    return _convert_mask(raw, edit, what)


def _blank_mask(raw: bytes, what: str) -> bytes:
    """All white at the image's size: without a mask the whole image may change."""
    return _png(Image.new("L", _open(raw, what).size, 255))


async def provider_mask(upload: UploadedFile, edit: EditColour = "white") -> bytes:
    """An OpenAI-style mask as an opaque PNG where ``edit``-coloured pixels are to change."""
    key = ("provider_mask", edit)
    png: bytes = remembered(upload, key)
    if is_missing(png):
        png = await imaging.run(_convert_mask, await read(upload), edit, upload.field)
        remember(upload, key, png)
    return png


async def alpha_mask(upload: UploadedFile, edit: EditColour = "white") -> bytes | None:
    """The image's own transparency as a mask (OpenAI's no-mask rule), or None if opaque."""
    key = ("alpha_mask", edit)
    png: bytes | None = remembered(upload, key)
    if is_missing(png):
        png = await imaging.run(_alpha_mask, await read(upload), edit, upload.field)
        remember(upload, key, png)
    return png


async def edit_mask_png(mask: UploadedFile | None, image: UploadedFile) -> bytes:
    """A white-is-edit mask: ``mask`` converted, or all white at ``image``'s size."""
    if mask is not None:
        return await provider_mask(mask, "white")
    png: bytes = remembered(image, "blank_mask")
    if is_missing(png):
        png = await imaging.run(_blank_mask, await read(image), image.field)
        remember(image, "blank_mask", png)
    return png
