"""Thumbnails: WebP, longest side 256 px, made once per image and kept in the blob store.

A thumbnail is stored under a key derived from its image's key (``thumb_key``), so it is made
on the first request for it and read back ever after, by every replica. Making one is bounded
work on the Pillow pool (``imaging.run``), never on the event loop:

- the image's header is read first (``imageinfo.probe``) and an image that declares more than
  ``limits.max_image_pixels`` is refused before Pillow sees it;
- JPEG is decoded at a reduced scale (``draft``: 1/2 to 1/8 of the pixels) and the rest is
  shrunk with ``reducing_gap`` (a cheap box reduce first), so even a large original costs a
  fraction of a full decode, and only once.

Concurrent first requests for one thumbnail share one making (``_flights``).
"""

from __future__ import annotations

import asyncio
import hashlib
import io

from PIL import Image

from .. import imaging
from ..blobs import BlobStore
from ..imageinfo import probe

SIDE = 256
QUALITY = 80
MIME = "image/webp"


class NotAnImage(ValueError):
    """The stored bytes are no image we serve (or declare too many pixels)."""


def thumb_key(key: str, side: int = SIDE) -> str:
    """The blob key of ``key``'s thumbnail: derived, never the hash of an upload."""
    return hashlib.sha256(f"imagegate thumbnail v1 webp {side} {key}".encode()).hexdigest()


def make_thumbnail(data: bytes, side: int = SIDE) -> bytes:
    """WebP bytes of ``data`` shrunk to fit ``side`` x ``side`` (runs on the Pillow pool)."""
    info = probe(data)
    if info is None:
        raise NotAnImage("not a png, jpeg or webp image")
    try:
        imaging.check_pixels(info.width, info.height, "image")
        with imaging.open_image(io.BytesIO(data), "image") as img:
            img.draft("RGB", (side, side))  # JPEG only: decode at a fraction of the size
            img.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=2.0)
            alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            small = img.convert("RGBA" if alpha else "RGB")
    except imaging.ImageRejected as exc:
        raise NotAnImage(str(exc)) from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise NotAnImage(f"undecodable image: {exc}") from None
    out = io.BytesIO()
    small.save(out, "WEBP", quality=QUALITY, method=4)
    return out.getvalue()


class Thumbnails:
    """Reads thumbnails from the blob store, making each once when missing."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.made = 0  # thumbnails made by this process (tests read it)
        self._flights: dict[str, asyncio.Task[bytes | None]] = {}

    async def get(self, key: str) -> bytes | None:
        """The thumbnail of blob ``key``; None when the image is not stored (yet)."""
        tkey = thumb_key(key)
        flight = self._flights.get(tkey)
        if flight is None:
            cached = await self.store.get(tkey)
            if cached is not None:
                return cached
            flight = self._flights.get(tkey)  # another request may have started meanwhile
            if flight is None:
                flight = asyncio.ensure_future(self._make(key, tkey))
                self._flights[tkey] = flight
                flight.add_done_callback(lambda done: self._landed(tkey, done))
        return await asyncio.shield(flight)  # a client that leaves does not stop the making

    def _landed(self, tkey: str, done: asyncio.Task[bytes | None]) -> None:
        self._flights.pop(tkey, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have left

    async def _make(self, key: str, tkey: str) -> bytes | None:
        data = await self.store.get(key)
        if data is None:
            return None
        thumb = await imaging.run(make_thumbnail, data)
        await self.store.put(tkey, thumb, MIME)
        self.made += 1
        return thumb
