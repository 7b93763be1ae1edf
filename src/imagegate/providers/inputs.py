"""Input images for providers that take them inline, and masks in each provider's convention.

Why: OpenAI's edit contract marks the area to change with *transparent* mask pixels (or, with
no mask, transparent pixels of the image). Most other providers want an opaque mask where
*white* means "change this" (Stability, BFL Fill, fal, Replicate); Amazon Titan and Nova
Canvas want *black* for it. JSON APIs want the bytes as base64 or a ``data:`` URI.
Conversions run on the Pillow pool (``imaging``) with the pixel cap checked before decoding,
and are made once per request: a retry or a fallback reuses the converted mask.
"""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any, Literal

from PIL import Image

from .. import imaging
from ..errors import UpstreamHTTPError
from ..request import UploadedFile
from .failures import invalid_input

EditColour = Literal["white", "black"]
_MISSING: Any = object()


def remembered(upload: UploadedFile, key: object) -> Any:
    """A conversion of ``upload`` made earlier in this request, or ``_MISSING``."""
    derived = upload.derived
    return derived.get(key, _MISSING) if derived is not None else _MISSING


def remember(upload: UploadedFile, key: object, value: Any) -> None:
    if upload.derived is None:
        upload.derived = {}
    upload.derived[key] = value


def is_missing(value: Any) -> bool:
    return value is _MISSING


async def read(upload: UploadedFile) -> bytes:
    """The upload's bytes (spooled files are read off the loop)."""
    if upload.data is not None:
        return upload.data
    return await asyncio.to_thread(upload.read_bytes)


async def b64(upload: UploadedFile) -> str:
    return base64.b64encode(await read(upload)).decode("ascii")


async def data_uri(upload: UploadedFile) -> str:
    return f"data:{upload.content_type};base64,{await b64(upload)}"


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def too_many_pixels(exc: imaging.ImageRejected, param: str) -> UpstreamHTTPError:
    """The caller's 400 ``invalid_image`` for an oversized input found at decode time."""
    return UpstreamHTTPError(str(exc), status=400, code="invalid_image", param=param)


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _convert_mask(raw: bytes, edit: EditColour, what: str = "mask") -> bytes:
    try:
        img = imaging.open_image(io.BytesIO(raw), what)
        img.load()
    except imaging.ImageRejected as exc:
        raise too_many_pixels(exc, what) from None
    except Exception:
        raise invalid_input(f"{what} is not a readable image", what) from None
    if _has_alpha(img):
        alpha = img.convert("RGBA").getchannel("A")
        # OpenAI: transparent = edit. Result: 255 where the provider should edit.
        white_edit = alpha.point(lambda a: 255 if a < 128 else 0)
    else:
        # Already an opaque mask: assume the common convention, white = edit.
        white_edit = img.convert("L").point(lambda v: 255 if v >= 128 else 0)
    out = white_edit if edit == "white" else white_edit.point(lambda v: 255 - v)
    buf = io.BytesIO()
    out.convert("L").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


async def provider_mask(upload: UploadedFile, edit: EditColour = "white") -> bytes:
    """An OpenAI-style mask as an opaque PNG where ``edit``-coloured pixels are to change."""
    key = ("provider_mask", edit)
    png: bytes = remembered(upload, key)
    if is_missing(png):
        png = await imaging.run(_convert_mask, await read(upload), edit, upload.field)
        remember(upload, key, png)
    return png


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


async def alpha_mask(upload: UploadedFile, edit: EditColour = "white") -> bytes | None:
    """The image's own transparency as a mask (OpenAI's no-mask rule), or None if opaque."""
    key = ("alpha_mask", edit)
    png: bytes | None = remembered(upload, key)
    if is_missing(png):
        png = await imaging.run(_alpha_mask, await read(upload), edit, upload.field)
        remember(upload, key, png)
    return png
