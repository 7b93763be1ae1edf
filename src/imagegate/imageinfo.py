"""Kind and pixel size of an image from its header, without decoding it.

Why: every image the gateway answers must really be an image of a sane size, whatever a
provider's mime hint says, and the check sits on the hot path of every answer. So only the
header is read: PNG's IHDR, JPEG's segments up to the SOFn marker, WebP's VP8/VP8L/VP8X chunk.
Base64 text is probed by decoding a few small windows of it (tens of bytes, never the whole
string); text whose windows do not decode (line-wrapped base64) is decoded in full once::

    probe(png_bytes)        # ImageInfo(kind="png", width=1024, height=1024)
    probe_b64(b64_text)     # the same from base64 text, or None when it is not an image
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass

import pybase64

from .request import sniff_image

Read = Callable[[int, int], bytes]  # (offset, length) → up to ``length`` bytes at ``offset``
HEAD = 30  # bytes enough for PNG's IHDR and every WebP header
MAX_SEGMENTS = 512  # JPEG segments walked before giving up (real files have a few dozen)
# SOFn markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # markers without a length field


@dataclass(frozen=True, slots=True)
class ImageInfo:
    kind: str  # png | jpeg | webp
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


class _Undecodable(Exception):
    """A base64 window did not decode (wrapped or broken text)."""


def probe(data: bytes) -> ImageInfo | None:
    """Kind and size of the image whose bytes start ``data``, or None when it is none."""
    return _probe(lambda off, n: data[off : off + n])


def probe_b64(text: str) -> ImageInfo | None:
    """``probe`` for base64 text, decoding only the windows the header needs."""

    def read(off: int, n: int) -> bytes:
        start = off // 3 * 4
        window = text[start : (off + n + 2) // 3 * 4]
        try:  # stdlib, not pybase64: a few dozen bytes, and pybase64 drops the GIL per call
            raw = binascii.a2b_base64(window, strict_mode=True)
        except (binascii.Error, ValueError):
            raise _Undecodable from None
        skip = off - start // 4 * 3
        return raw[skip : skip + n]

    try:
        found = _probe(read)
    except _Undecodable:
        found = None
    else:
        if found is not None or sniff_image(read(0, 16)) is None:
            return found
    # Rare: wrapped lines shift the windows. Decode leniently once and probe the bytes.
    try:
        return probe(pybase64.b64decode(text, validate=False))
    except (binascii.Error, ValueError):
        return None


def _probe(read: Read) -> ImageInfo | None:
    head = read(0, HEAD)
    kind = sniff_image(head[:16])
    if kind == "png":
        return _png(head)
    if kind == "jpeg":
        return _jpeg(read)
    if kind == "webp":
        return _webp(head)
    return None


def _png(head: bytes) -> ImageInfo | None:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    return _sized("png", int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"))


def _jpeg(read: Read) -> ImageInfo | None:
    pos = 2  # after SOI
    for _ in range(MAX_SEGMENTS):
        seg = read(pos, 9)
        if len(seg) < 2 or seg[0] != 0xFF:
            return None
        marker = seg[1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
        elif marker in SOF:
            if len(seg) < 9:
                return None
            return _sized("jpeg", int.from_bytes(seg[7:9], "big"), int.from_bytes(seg[5:7], "big"))
        elif marker in STANDALONE:
            pos += 2
        elif marker in (0xD8, 0xD9, 0xDA) or len(seg) < 4:
            return None  # another SOI, the end, or scan data before any frame header
        else:
            pos += 2 + int.from_bytes(seg[2:4], "big")
    return None


def _webp(head: bytes) -> ImageInfo | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(head[26:28], "little") & 0x3FFF
        height = int.from_bytes(head[28:30], "little") & 0x3FFF
        return _sized("webp", width, height)
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return _sized("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return _sized("webp", width, height)
    return None


def _sized(kind: str, width: int, height: int) -> ImageInfo | None:
    return ImageInfo(kind, width, height) if width > 0 and height > 0 else None
