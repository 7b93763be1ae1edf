"""Small real images for the tests, and the decoding the fakes and tests do on them.

One maker for every test and fake: ``png(seed)`` is a tiny image whose colour depends on the
seed (same seed, same bytes; another seed, other bytes), in any format PIL writes::

    png()                      # 16x16 RGB PNG
    png(3, 32, "JPEG")         # another colour, 32x32, JPEG
    solid((40, 40), (5, 6, 7)) # one colour you choose
    alpha_mask((16, 16), clear=(0, 0, 8, 16))   # OpenAI-style mask: transparent = edit here

The decoders return the image or None; ``expect_image`` also says why in a fake's list of
wire-format problems.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from typing import Any

from PIL import Image

Size = int | tuple[int, int]
Box = tuple[int, int, int, int]


def colour_of(seed: object) -> tuple[int, int, int]:
    """The RGB colour ``png(seed)`` is painted with."""
    digest = hashlib.sha256(str(seed).encode()).digest()
    return digest[0], digest[1], digest[2]


def encode(img: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    """``img`` saved in ``fmt`` (PIL's name: PNG, JPEG, WEBP, ...)."""
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def solid(
    size: Size = 16, colour: Any = (0, 0, 0), mode: str = "RGB", fmt: str = "PNG", **options: Any
) -> bytes:
    """An image of one colour (``colour`` in ``mode``'s terms: a tuple, or an int for L)."""
    wh = (size, size) if isinstance(size, int) else size
    return encode(Image.new(mode, wh, colour), fmt, **options)


def png(seed: object = 0, size: Size = 16, fmt: str = "PNG") -> bytes:
    """A small real image whose colour depends on ``seed`` (an index, a prompt, ...)."""
    return solid(size, colour_of(seed), "RGB", fmt)


def alpha_mask(size: Size = 16, clear: Box | None = None, mode: str = "RGBA") -> bytes:
    """An opaque black RGBA mask with ``clear`` (left, top, right, bottom) transparent: the
    OpenAI convention, where transparent pixels mark what to edit."""
    wh = (size, size) if isinstance(size, int) else size
    img = Image.new(mode, wh, (0, 0, 0, 255))
    if clear is not None:
        img.paste((0, 0, 0, 0), clear)
    return encode(img)


def image_of(raw: bytes) -> Image.Image | None:
    """The decoded image, or None when ``raw`` is not one."""
    try:
        img = Image.open(io.BytesIO(raw))
        img.load()
    except Exception:
        return None
    return img


def decode_b64(value: Any) -> Image.Image | None:
    """A base64 string (no ``data:`` prefix) holding an image, else None."""
    if not isinstance(value, str) or not value or value.startswith("data:"):
        return None
    try:
        return image_of(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None


def decode_data_uri(value: Any) -> Image.Image | None:
    """A ``data:image/...;base64,`` URI holding an image, else None."""
    if not isinstance(value, str) or not value.startswith("data:image/"):
        return None
    header, _, payload = value.partition(",")
    if not header.endswith(";base64"):
        return None
    return decode_b64(payload)


def data_uri_bytes(value: str) -> bytes:
    """The bytes a ``data:...;base64,`` URI carries."""
    return base64.b64decode(value.partition(",")[2])


def expect_image(
    value: Any, what: str, problems: list[str], *, data_uri: bool = False
) -> Image.Image | None:
    """Decode base64 (or a data URI) sent upstream; when it is not an image, say so in
    ``problems`` (a fake's wire-format violations)."""
    img = decode_data_uri(value) if data_uri else decode_b64(value)
    if img is None:
        form = "a data:image/...;base64 URI" if data_uri else "base64-encoded image data"
        problems.append(f"{what}: expected {form}")
    return img
