"""``placeholder/<name>``: an offline, no-AI stand-in provider for development, demos and tests.

It renders a deterministic picture with Pillow from the prompt, size, n and seed (the same
request always gives the same bytes), in png, jpeg or webp, for all three operations. It calls
no network and needs no key; it is what ``make run`` serves out of the box.

Of OpenAI's optional parameters it honours ``output_compression`` (the JPEG/WebP quality);
the others are left out and noted on the trace (``PARAMS``, as a declared provider does).
"""

from __future__ import annotations

import hashlib
import io
import time

from PIL import Image, ImageDraw, ImageFont, ImageOps

from .. import imaging
from ..config import ProviderConfig
from ..request import GeneratedImage, ImageRequest, ImageResult, UploadedFile
from .base import Capabilities
from .core.failures import invalid_input
from .core.inputs import too_many_pixels
from .core.params import PASS, Params, notes
from .core.sizes import parse_wh

MAX_SIDE = 2048
CAPS = Capabilities(
    operations=frozenset({"generations", "edits", "variations"}),
    sizes=None,
    max_n=10,
    output_formats=frozenset({"png", "jpeg", "webp"}),
    max_images=16,
    mask=True,
)
PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
PARAMS: Params = {"output_compression": PASS}


def parse_size(size: str | None, default: tuple[int, int] = (1024, 1024)) -> tuple[int, int]:
    """``"WxH"`` → (w, h); ``auto``/None → default; anything else is a 400 naming ``size``."""
    wh = parse_wh(size)
    if wh is None:
        return default
    width, height = wh
    if not (16 <= width <= MAX_SIDE and 16 <= height <= MAX_SIDE):
        raise invalid_input(f"size {size!r} out of range 16..{MAX_SIDE}", "size")
    return width, height


def _palette(seed: bytes) -> list[tuple[int, int, int]]:
    return [(seed[i], seed[i + 1], seed[i + 2]) for i in range(0, 30, 3)]


def render(
    prompt: str,
    size: tuple[int, int],
    index: int,
    seed: int | None,
    fmt: str,
    base: Image.Image | None = None,
    quality: int | None = None,
) -> bytes:
    """One deterministic image: shapes from a hash of the inputs, the prompt written on it."""
    digest = hashlib.sha256(f"{prompt}\0{size}\0{index}\0{seed}".encode()).digest()
    colors = _palette(digest)
    width, height = size
    if base is not None:
        img = ImageOps.fit(base.convert("RGB"), size)
        tint = Image.new("RGB", size, colors[0])
        img = Image.blend(img, tint, 0.35)
    else:
        img = Image.new("RGB", size, colors[0])
    draw = ImageDraw.Draw(img)
    for k in range(6):
        b = digest[k * 5 : k * 5 + 5]
        x0, y0 = b[0] * width // 256, b[1] * height // 256
        x1, y1 = x0 + (b[2] + 32) * width // 512, y0 + (b[3] + 32) * height // 512
        box = (x0, y0, min(x1, width - 1), min(y1, height - 1))
        if b[4] % 2:
            draw.ellipse(box, fill=colors[(k + 1) % 10])
        else:
            draw.rectangle(box, fill=colors[(k + 1) % 10])
    label = f"placeholder #{index + 1}: {prompt}"[:80]
    font_px = max(10, min(width, height) // 32)
    band = font_px + font_px // 2
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0))
    font = ImageFont.load_default(size=font_px)
    draw.text((font_px // 2, height - band + font_px // 4), label, fill=(255, 255, 255), font=font)
    out = io.BytesIO()
    pil_fmt = PIL_FORMAT[fmt]
    if pil_fmt == "PNG":
        img.save(out, pil_fmt, compress_level=1)
    else:
        img.save(out, pil_fmt, quality=quality if quality is not None else 85)
    return out.getvalue()


def load_input(upload: UploadedFile) -> Image.Image:
    """Decode an input image; a corrupt or oversized one is the caller's 400, not our 500.

    The pixel cap (``limits.max_image_pixels``) is checked on the header, before decoding.
    """
    try:
        with upload.open() as fh:
            img = imaging.open_image(fh, f"{upload.field} {upload.filename!r}")
            img.load()
            return img
    except imaging.ImageRejected as exc:
        raise too_many_pixels(exc, upload.field) from None
    except (OSError, ValueError, SyntaxError) as exc:
        message = f"{upload.filename}: not a decodable image ({type(exc).__name__})"
        raise invalid_input(message, upload.field) from None


class PlaceholderProvider:
    """Renders images locally; never fails unless the request itself is invalid."""

    def __init__(self, name: str = "placeholder", config: ProviderConfig | None = None) -> None:
        self.name = name
        self.config = config or ProviderConfig()

    def capabilities(self, model: str) -> Capabilities:
        return CAPS

    def param_notes(self, model: str, request: ImageRequest) -> list[str]:
        """What the rendering leaves out of the request (``core.params.NotesParams``)."""
        return notes(PARAMS, model, request, streams=False)

    async def call(self, model: str, request: ImageRequest) -> ImageResult:
        return await imaging.run(self._render_all, model, request)  # on the Pillow pool

    def _render_all(self, model: str, request: ImageRequest) -> ImageResult:
        fmt = request.output_format or "png"
        size = parse_size(request.size)
        base: Image.Image | None = None
        if request.operation != "generations":
            if not request.images:
                raise invalid_input("an input image is required", "image")
            base = load_input(request.images[0])
        prompt = request.prompt or ("variation" if request.operation == "variations" else "")
        images = [
            GeneratedImage(
                data=render(
                    f"{model}:{prompt}",
                    size,
                    i,
                    request.seed,
                    fmt,
                    base,
                    request.output_compression,
                ),
                mime=f"image/{fmt}",
                revised_prompt=None,
            )
            for i in range(request.n_images)
        ]
        return ImageResult(
            images=images,
            created=int(time.time()),
            output_format=fmt,
            size=f"{size[0]}x{size[1]}",
        )

    async def close(self) -> None:
        return None
