"""Input images for providers that take them inline, and masks in each provider's convention.

Why: OpenAI's edit contract marks the area to change with *transparent* mask pixels (or, with
no mask, transparent pixels of the image). Most other providers want an opaque mask where
*white* means "change this" (Stability, BFL Fill, fal, Replicate); Amazon Titan and Nova
Canvas want *black* for it. JSON APIs want the bytes as base64 or a ``data:`` URI.
Conversions run in a worker thread so a large upload never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Literal

from PIL import Image

from ..errors import UpstreamHTTPError
from ..request import UploadedFile

EditColour = Literal["white", "black"]


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


def _convert_mask(raw: bytes, edit: EditColour) -> bytes:
    try:
        img = Image.open(io.BytesIO(raw))
        img.load()
    except Exception:
        raise UpstreamHTTPError("mask is not a readable image", status=400) from None
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
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
    return await asyncio.to_thread(_convert_mask, await read(upload), edit)


async def alpha_mask(upload: UploadedFile, edit: EditColour = "white") -> bytes | None:
    """The image's own transparency as a mask (OpenAI's no-mask rule), or None if opaque."""
    raw = await read(upload)

    def convert() -> bytes | None:
        try:
            img = Image.open(io.BytesIO(raw))
        except Exception:
            return None
        if img.mode not in ("RGBA", "LA", "PA") and not (
            img.mode == "P" and "transparency" in img.info
        ):
            return None
        return _convert_mask(raw, edit)

    return await asyncio.to_thread(convert)
