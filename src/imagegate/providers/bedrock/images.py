"""Input images and masks the way Titan Image Generator and Nova Canvas accept them.

Why: Nova Canvas takes PNG or JPEG input images whose alpha channel, if any, holds no
transparent or translucent pixel, and a mask of pure black (edit) and white (keep) pixels
(https://docs.aws.amazon.com/nova/latest/userguide/image-gen-access.html, "Input images for
image generation" and "Masking images"; Titan shares the body shape). OpenAI's edit contract
marks the area to change with transparent pixels instead, so:

- an image with transparency is sent opaque (its alpha dropped, each pixel keeping its own
  colour: the transparent area is repainted anyway) and its transparency becomes the mask;
- an image without a transparent pixel, even one stored as RGBA, has no area to inpaint: an
  edit without a mask then changes the whole picture (OpenAI's mask-less edit), which is
  ``IMAGE_VARIATION`` guided by the prompt, never an ``INPAINTING`` with an all-white mask;
- a mask that marks nothing to change is refused (400) instead of being sent.

Conversions run on the Pillow pool with the pixel cap checked first, once per request (kept
on the upload like ``core/masks.py``' masks, so a retry or fallback reuses them).
"""

from __future__ import annotations

import base64
import io

from PIL import Image

from ... import imaging
from ...request import UploadedFile
from ..core import inputs, masks
from ..core.failures import invalid_input


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _flattened(raw: bytes, what: str) -> bytes | None:
    """The image as an opaque PNG when it has a non-opaque pixel, else None (send as is)."""
    try:
        img = imaging.open_image(io.BytesIO(raw), what)
        if not _has_alpha(img):
            return None
        rgba = img.convert("RGBA")
    except imaging.ImageRejected as exc:
        raise inputs.too_many_pixels(exc, what) from None
    except Exception:
        raise invalid_input(f"{what} is not a readable image", what) from None
    if rgba.getchannel("A").getextrema()[0] == 255:
        return None  # an alpha channel, but every pixel opaque: Nova accepts it
    buf = io.BytesIO()
    rgba.convert("RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


async def opaque_b64(upload: UploadedFile) -> str:
    """The upload as base64 without transparent pixels (its own bytes when it has none)."""
    key = ("bedrock_opaque",)
    flat: bytes | None = inputs.remembered(upload, key)
    if inputs.is_missing(flat):
        flat = await imaging.run(_flattened, await inputs.read(upload), upload.field)
        inputs.remember(upload, key, flat)
    if flat is None:
        return await inputs.b64(upload)
    return base64.b64encode(flat).decode("ascii")


def marks_something(mask_png: bytes) -> bool:
    """Whether a black-is-edit mask made by ``inputs`` has at least one pixel to change."""
    with Image.open(io.BytesIO(mask_png)) as img:
        low, _ = img.convert("L").getextrema()
    return bool(low == 0)


async def edit_mask(image: UploadedFile, mask: UploadedFile | None) -> bytes | None:
    """The black-is-edit mask for an edit, or None when the whole image is to change.

    With a mask: that mask (400 when it marks nothing). Without one: the image's own
    transparency, or None when it has no transparent pixel.
    """
    if mask is not None:
        png = await masks.provider_mask(mask, "black")
        if not await _marks_something(mask, png):
            raise invalid_input(
                "the mask marks nothing to edit (its transparent pixels mark the area)", "mask"
            )
        return png
    found = await masks.alpha_mask(image, "black")
    if found is None or not await _marks_something(image, found):
        return None
    return found


async def _marks_something(upload: UploadedFile, png: bytes) -> bool:
    key = ("bedrock_marks_something",)
    known: bool = inputs.remembered(upload, key)
    if inputs.is_missing(known):
        known = await imaging.run(marks_something, png)
        inputs.remember(upload, key, known)
    return known
