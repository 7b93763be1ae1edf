"""Google's image models as data, for the Gemini API (``google/``) and Vertex AI (``vertex/``):
which wire method each name speaks (``generateContent`` or Imagen's ``predict``), what it can
do, how many images one call returns, and Google's error conventions.

Names are matched by family rather than listed one by one, because Google ships new versions
under the same patterns: ``imagen-*``/``imagegeneration@*`` are Imagen (``*capability*`` the
mask editor, ``*ultra*`` one image per call), Gemini names with ``image`` in them make images
(``gemini-3*`` take up to 14 input images and render 2K/4K), other Gemini names make none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ...errors import UpstreamHTTPError
from ..base import Capabilities
from ..core.params import Params, Sent
from ..core.policy import CODE as POLICY
from ..core.policy import is_policy
from ..core.sizes import RatioSizes
from ..core.spec import ModelSpec

GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
# The native sizes as grids (a size per ratio, portrait and landscape side by side): one per
# line would hide which belong together, so the formatter leaves them as written.
GEMINI_NATIVE = (
    "1024x1024",
    "832x1248",
    "1248x832",
    "864x1184",
    "1184x864",
    "896x1152",
    "1152x896",
    "768x1344",
    "1344x768",
    "1536x672",
)
IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
IMAGEN_NATIVE = (
    "1024x1024",
    "896x1280",
    "1280x896",
    "768x1408",
    "1408x768",  # 1K
    "2048x2048",
    "1792x2560",
    "2560x1792",
    "1536x2816",
    "2816x1536",  # 2K
)
GEMINI_SIZES = RatioSizes(GEMINI_RATIOS, GEMINI_NATIVE)
IMAGEN_SIZES = RatioSizes(IMAGEN_RATIOS, IMAGEN_NATIVE)
# longest side → size tier: Gemini 3's ``imageConfig.imageSize``, Imagen's ``sampleImageSize``
GEMINI_TIERS = ((1536, "1K"), (3072, "2K"), (8192, "4K"))
IMAGEN_TIERS = ((1536, "1K"), (4096, "2K"))
TWO_K_IMAGEN = ("imagen-4.0-generate-001", "imagen-4.0-ultra-generate-001")
IMAGEN_FORMATS = frozenset({"png", "jpeg"})  # through ``outputOptions`` on both APIs
# Imagen's ``outputOptions.compressionQuality`` (0-100, for image/jpeg output only, per
# https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api) is OpenAI's
# ``output_compression``. Gemini's generateContent has no field for any of OpenAI's
# optional parameters; they are left out and noted on the trace.
IMAGEN_PARAMS: Params = {
    "output_compression": Sent(
        wire="outputOptions.compressionQuality", needs=("output_format", "jpeg")
    )
}
# a model name goes into the URL path: letters, digits and ``. _ - @`` only
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
# names listed when a caller asks for one the table cannot match
KNOWN = (
    "gemini-2.5-flash-image",
    "gemini-3-pro-image-preview",
    "imagen-4.0-generate-001",
    "imagen-4.0-ultra-generate-001",
    "imagen-4.0-fast-generate-001",
    "imagen-3.0-capability-001",
)


@dataclass(frozen=True, slots=True)
class GoogleModel(ModelSpec):
    """One Google image model: the method it is called with and its wire options."""

    method: Literal["generateContent", "predict"] = "generateContent"
    modalities: tuple[str, ...] = ("IMAGE",)  # Gemini: ``responseModalities``
    tiers: tuple[tuple[int, str], ...] = ()  # the size tiers it renders beyond 1K


def gemini(model: str) -> GoogleModel:
    """A Gemini model: image-output models generate and edit (no mask), one image per call."""
    if "image" not in model:
        why = (
            f"{model!r} is not an image model (Gemini image models have 'image' in their name, "
            "e.g. gemini-2.5-flash-image)"
        )
        return GoogleModel(Capabilities.nothing(why))
    gemini3 = model.startswith("gemini-3")
    caps = Capabilities(
        operations=frozenset({"generations", "edits"}),
        sizes=GEMINI_SIZES,
        max_n=10,
        output_formats=frozenset({"png"}),
        max_images=14 if gemini3 else 3,
        mask=False,
    )
    modalities = ("TEXT", "IMAGE") if "2.0" in model else ("IMAGE",)
    tiers = GEMINI_TIERS if gemini3 else ()
    return GoogleModel(caps, modalities=modalities, tiers=tiers, batch=1)


def imagen(model: str, *, vertex: bool) -> GoogleModel:
    """An Imagen model: ``sampleCount`` up to 4 per call (Ultra renders one); the
    ``capability`` models edit with a mask, on Vertex AI only."""
    if "capability" in model:
        if not vertex:
            why = f"{model!r} is an Imagen editing model: Vertex AI only"
            return GoogleModel(Capabilities.nothing(why))
        caps = Capabilities(
            operations=frozenset({"edits"}),
            sizes=None,  # the output keeps the input image's dimensions
            max_n=10,
            output_formats=IMAGEN_FORMATS,
            max_images=1,
            mask=True,
        )
        return GoogleModel(caps, method="predict", batch=4, params=IMAGEN_PARAMS)
    caps = Capabilities(
        operations=frozenset({"generations"}),
        sizes=IMAGEN_SIZES,
        max_n=10,
        output_formats=IMAGEN_FORMATS,
    )
    tiers = IMAGEN_TIERS if model in TWO_K_IMAGEN else ()
    batch = 1 if "ultra" in model else 4
    return GoogleModel(caps, method="predict", tiers=tiers, batch=batch, params=IMAGEN_PARAMS)


def row(model: str, *, vertex: bool) -> GoogleModel | None:
    """The table row for ``model`` (None: a name that cannot go into a URL)."""
    if not NAME.fullmatch(model):
        return None
    if model.startswith(("imagen", "imagegeneration")):
        return imagen(model, vertex=vertex)
    return gemini(model)


def table(*, vertex: bool) -> dict[str, GoogleModel]:
    return {name: found for name in KNOWN if (found := row(name, vertex=vertex)) is not None}


CREDENTIAL_MARKERS = ("api key not valid", "api_key_invalid", "api key expired")
GOOGLE_POLICY_MARKERS = ("responsible ai", "sensitive words", "blocked")


def errors(exc: UpstreamHTTPError) -> UpstreamHTTPError:
    """Google's conventions → ours: a bad key is a 400 there, a 401 here; a refusal worded
    Google's way ("violate Google's Responsible AI practices") is a content-policy 400."""
    lowered = exc.message.lower()
    if exc.status == 400 and any(m in lowered for m in CREDENTIAL_MARKERS):
        code = "provider_credential_invalid"
        return UpstreamHTTPError(exc.message, status=401, code=code, param=exc.param)
    if exc.status == 400 and (
        is_policy(exc.message) or any(m in lowered for m in GOOGLE_POLICY_MARKERS)
    ):
        return UpstreamHTTPError(exc.message, status=400, code=POLICY, param=exc.param)
    return exc
