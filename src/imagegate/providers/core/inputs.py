"""Input images for providers that take them inline (``data:`` URIs, base64), and the
per-request memo that makes every conversion once: a retry or a fallback reuses it.

JSON APIs want the bytes as base64 or a ``data:`` URI; spooled uploads are read off the loop.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from ... import imaging
from ...errors import UpstreamHTTPError
from ...request import UploadedFile

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


def png_upload(png: bytes, field: str = "mask") -> UploadedFile:
    """A PNG made by the gateway (a converted mask) as an in-memory upload, for multipart."""
    return UploadedFile(field, f"{field}.png", "png", len(png), data=png)


def too_many_pixels(exc: imaging.ImageRejected, param: str) -> UpstreamHTTPError:
    """The caller's 400 ``invalid_image`` for an oversized input found at decode time."""
    return UpstreamHTTPError(str(exc), status=400, code="invalid_image", param=param)
