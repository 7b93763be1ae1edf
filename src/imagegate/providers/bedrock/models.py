"""Bedrock's image models as data: the family each ``modelId`` belongs to, what it can do,
how many images one ``InvokeModel`` call returns, and the sizes each family renders.

- Titan Image Generator G1 v1/v2: fixed sizes (OpenAI's standard sizes are mapped to the
  nearest), up to 5 images per call, one input image.
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html
- Nova Canvas: any size within its rules (``nova_size``), up to 5 images per call and 5 input
  images, seeds 0–858,993,459: a seed outside is refused by the routing plan (``max_seed``),
  so a fallback can serve the request.
  https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html
- Stability on Bedrock (SD3.5 Large, Stable Image Core/Ultra): one image per call; SD3.5 and
  Ultra also run image-to-image.
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-stable-image-core-text-image-request-response.html

Model ids come with a regional inference-profile prefix or a version suffix
(``us.amazon.nova-canvas-v1:0``), so a name is matched by family; ``table`` lists the
canonical ids, which an unknown model's refusal names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ...request import Operation
from ..base import Capabilities
from ..core.params import Params, Sent
from ..core.sizes import parse_wh
from ..core.spec import ModelSpec

Family = Literal["titan", "nova", "stability"]
ALL_OPS: frozenset[Operation] = frozenset({"generations", "edits", "variations"})
# Titan's 25 sizes as a grid: one per line would run over a screen.
TITAN_SIZES = (
    (1024, 1024),
    (768, 768),
    (512, 512),
    (768, 1152),
    (384, 576),
    (1152, 768),
    (576, 384),
    (768, 1280),
    (384, 640),
    (1280, 768),
    (640, 384),
    (896, 1152),
    (448, 576),
    (1152, 896),
    (576, 448),
    (768, 1408),
    (384, 704),
    (1408, 768),
    (704, 384),
    (640, 1408),
    (320, 704),
    (1408, 640),
    (704, 320),
    (1152, 640),
    (1173, 640),
)
OPENAI_SIZES = (
    "256x256",
    "512x512",
    "1024x1024",
    "1792x1024",
    "1024x1792",
    "1536x1024",
    "1024x1536",
    "auto",
)
PER_CALL = 5  # Titan and Nova: numberOfImages 1..5
# Nova Canvas seeds: 0..858,993,459 (AWS's own Nova example draws its seed from that range,
# https://docs.aws.amazon.com/nova/latest/userguide/code-examples-image.html).
NOVA_MAX_SEED = 858_993_459
PNG_JPEG = frozenset({"png", "jpeg"})
# Titan and Nova: ``imageGenerationConfig.quality`` is ``standard`` or ``premium`` (the two pages
# above); OpenAI's ``auto`` leaves Bedrock's default. Stability on Bedrock has no quality field,
# and none of these has OpenAI's other optional parameters (left out, noted on the trace).
AMAZON_QUALITY = {
    "hd": "premium",
    "high": "premium",
    "standard": "standard",
    "medium": "standard",
    "low": "standard",
}
AMAZON_PARAMS: Params = {"quality": Sent(values=AMAZON_QUALITY)}


@dataclass(frozen=True, slots=True)
class BedrockModel(ModelSpec):
    """One Bedrock model family: which body it speaks."""

    family: Family = "titan"


TITAN = BedrockModel(
    Capabilities(
        operations=ALL_OPS,
        sizes=frozenset(f"{w}x{h}" for w, h in TITAN_SIZES) | frozenset(OPENAI_SIZES),
        output_formats=frozenset({"png"}),
        max_images=1,
        mask=True,
    ),
    family="titan",
    batch=PER_CALL,
    params=AMAZON_PARAMS,
)
NOVA = BedrockModel(
    Capabilities(
        operations=ALL_OPS,
        output_formats=frozenset({"png"}),
        max_images=5,
        mask=True,
        max_seed=NOVA_MAX_SEED,
    ),
    family="nova",
    batch=PER_CALL,
    params=AMAZON_PARAMS,
)
STABILITY_GEN = BedrockModel(Capabilities(output_formats=PNG_JPEG), family="stability", batch=1)
STABILITY_EDIT = BedrockModel(
    Capabilities(operations=frozenset({"generations", "edits"}), output_formats=PNG_JPEG),
    family="stability",
    batch=1,
)


def match(model: str) -> BedrockModel | None:
    """The row of a ``modelId`` by family (None: not an image model we speak)."""
    if len(model) > 256:
        return None
    if "titan-image-generator" in model:
        return TITAN
    if "nova-canvas" in model:
        return NOVA
    if model.startswith("stability.") or ".stability." in model:
        return STABILITY_EDIT if "sd3-5" in model or "ultra" in model else STABILITY_GEN
    return None


TABLE = {
    name: row
    for name in (
        "amazon.titan-image-generator-v2:0",
        "amazon.titan-image-generator-v1",
        "amazon.nova-canvas-v1:0",
        "stability.sd3-5-large-v1:0",
        "stability.stable-image-core-v1:1",
        "stability.stable-image-ultra-v1:1",
    )
    if (row := match(name)) is not None
}


def nova_size(size: str | None) -> tuple[int, int]:
    """Any ``WxH`` brought into Nova Canvas's rules: sides 320–4096 in steps of 16, ≤ 4.19 MP,
    aspect ratio within 1:4..4:1 (a more extreme ratio is narrowed to 4:1)."""
    w, h = (float(v) for v in parse_wh(size) or (1024, 1024))
    w, h = max(w, h / 4), max(h, w / 4)
    scale = min(1.0, 4096 / max(w, h), math.sqrt(4_194_304 / (w * h)))
    if min(w, h) * scale < 320:
        scale = 320 / min(w, h)

    def snap(v: float) -> int:
        return min(4096, max(320, int(v // 16) * 16))

    return snap(w * scale), snap(h * scale)
