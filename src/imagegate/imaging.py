"""Pillow on a short leash: a small thread pool of its own and a pixel cap before any decode.

Why: a 700 KB PNG may declare 13000x13000 pixels and decode to ~0.7 GB, and Pillow work on
the default executor would queue behind (and hold up) blob IO. So:

- every Pillow call runs on ``limits.image_workers`` threads of their own (``run``/``call``);
- every open checks the declared size first (``open_image``: Pillow's open reads only the
  header) and refuses more than ``limits.max_image_pixels`` before anything is decoded;
- uploads are checked at the edge, right after the multipart parse and before any planning
  or upstream work, from their header bytes (``check_uploads``; a few µs, no thread hop),
  with Pillow's lazy open on the pool only when the header bytes kept are not enough.

The cap and the pool are per process (``configure`` takes them from the config).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Literal, TypeVar

from PIL import Image

from . import imageinfo
from .config import LimitsConfig
from .errors import InvalidImage
from .request import UploadedFile

T = TypeVar("T")
Size = tuple[int, int]
Probe = Size | Literal["unknown"]  # unknown: no size could be read
THREAD_PREFIX = "imagegate-pillow"

_DEFAULTS = LimitsConfig()
_max_pixels = _DEFAULTS.max_image_pixels
_workers = _DEFAULTS.image_workers
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_configured: LimitsConfig | None = None


class ImageRejected(ValueError):
    """An image declares more pixels than the cap; callers answer it as their own 400."""


def configure(limits: LimitsConfig) -> None:
    """Take the pixel cap and the pool size from ``limits`` (~50 ns when unchanged)."""
    global _max_pixels, _workers, _pool, _configured
    if limits is _configured:
        return
    _configured = limits
    _max_pixels = limits.max_image_pixels
    # Pillow's own bomb check (a warning past MAX_IMAGE_PIXELS) must never be the tighter one.
    if Image.MAX_IMAGE_PIXELS is not None and _max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = _max_pixels
    if limits.image_workers != _workers:
        with _lock:
            old, _pool, _workers = _pool, None, limits.image_workers
        if old is not None:
            old.shutdown(wait=False)


def max_pixels() -> int:
    return _max_pixels


def _executor() -> ThreadPoolExecutor:
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(_workers, thread_name_prefix=THREAD_PREFIX)
            pool = _pool
    return pool


async def run(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on the Pillow pool, awaited from the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(fn, *args))


def check_pixels(width: int, height: int, what: str, limit: int | None = None) -> None:
    """``ImageRejected`` past ``limit`` (default: the process's cap)."""
    limit = _max_pixels if limit is None else limit
    if width * height > limit:
        raise ImageRejected(
            f"{what}: {width}x{height} is {width * height:,} pixels; the limit is {limit:,}"
        )


def open_image(fh: IO[bytes], what: str) -> Image.Image:
    """Pillow's lazy open (header only) with the pixel cap checked before any decode."""
    try:
        img = Image.open(fh)
    except Image.DecompressionBombError:
        raise ImageRejected(f"{what}: far more pixels than the limit of {_max_pixels:,}") from None
    check_pixels(img.width, img.height, what)
    return img


# --- the edge check -------------------------------------------------------------------------


def _pillow_size(upload: UploadedFile) -> Probe:
    """The declared size by Pillow's lazy open (header only), or "unknown"."""
    try:
        with upload.open() as fh:
            return open_image(fh, upload.field).size
    except ImageRejected:
        raise
    except Exception:  # not readable as an image: the provider will say so
        return "unknown"


async def check_uploads(uploads: Iterable[UploadedFile], limits: LimitsConfig) -> None:
    """The edge check: a 400 ``invalid_image`` for any upload over ``limits``' pixel cap.

    Runs before any decode or upstream work. An upload whose header cannot be read at all
    passes (the provider, or our own capped decode, refuses it later): only a declared size
    can be over the cap.
    """
    limit = limits.max_image_pixels
    for upload in uploads:
        held = upload.data is not None  # all of it in memory, or only the head of a spool
        info = imageinfo.probe(upload.data if upload.data is not None else upload.head)
        size: Probe = (info.width, info.height) if info is not None else "unknown"
        try:
            if info is None and not held:  # the head kept was not enough (long JPEG EXIF)
                size = await run(_pillow_size, upload)
            if isinstance(size, tuple) and size[0] * size[1] > limit:
                check_pixels(size[0], size[1], f"{upload.field} {upload.filename!r}", limit)
        except ImageRejected as exc:
            raise InvalidImage(str(exc), param=upload.field) from None
