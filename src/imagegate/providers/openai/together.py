"""``together/<org>/<model>``: image models served by Together AI (FLUX and others).

``POST https://api.together.xyz/v1/images/generations`` with ``Authorization: Bearer``; the
answer is OpenAI-like (``{id, model, object, data: [{index, b64_json | url}]}``). Docs:
https://docs.together.ai/reference/post-images-generations and
https://docs.together.ai/docs/images-overview (Kontext editing through ``image_url``).

Translation: ``size`` → ``width``/``height`` (``auto`` leaves Together's default); ``n`` → ``n``
(at most ``max_n_per_call`` per call, default 4, the rest in parallel calls, each with the next
seed); ``seed`` → ``seed``; ``output_format`` png/jpeg → ``output_format``; images are always
asked as base64 (``response_format: "base64"``). Edits exist only on Kontext models: the input
image travels as a ``data:`` URI in ``image_url``. Config: ``api_key``, ``base_url``,
``headers``, ``max_n_per_call``, ``steps`` (default steps for every call).
"""

from __future__ import annotations

from typing import Any

from ...config import ProviderConfig
from ...request import ImageResult
from ..base import Capabilities
from ..core.answers import openai_images
from ..core.call import Answer, Call, Wire
from ..core.sizes import parse_wh
from ..core.spec import Calls, Inputs, Keys, Models, ModelSpec, ProviderSpec
from .openai import json_head

FORMATS = frozenset({"png", "jpeg"})
GENERATE = ModelSpec(
    Capabilities(operations=frozenset({"generations"}), max_n=10, output_formats=FORMATS)
)
KONTEXT = ModelSpec(
    Capabilities(
        operations=frozenset({"generations", "edits"}),
        max_n=10,
        output_formats=FORMATS,
        max_images=1,
    )
)


def match(model: str) -> ModelSpec | None:
    return KONTEXT if "kontext" in model.lower() else None


def build(call: Call[ModelSpec]) -> Wire:
    request = call.request
    body = json_head(call, "base64")
    wh = parse_wh(request.size)
    if wh is not None:
        body["width"], body["height"] = wh
    if call.seed is not None:
        body["seed"] = call.seed
    if request.output_format:
        body["output_format"] = request.output_format
    if call.settings["steps"] is not None:
        body["steps"] = call.settings["steps"]
    if call.images:
        body["image_url"] = call.images[0]
    return Wire("/images/generations", json=body)


def parse(call: Call[ModelSpec], answer: Answer) -> ImageResult:
    images = openai_images(answer.doc(), call.provider).images
    return ImageResult(images=images, output_format=call.request.output_format or "jpeg")


def setup(config: ProviderConfig) -> dict[str, Any]:
    steps = config.option("steps")
    try:
        return {"steps": int(steps) if steps is not None else None}
    except (TypeError, ValueError):
        return {"steps": None}  # garbage in config: Together's default


SPEC = ProviderSpec(
    type="together",
    calls=Calls(build, parse),
    base_url="https://api.together.xyz/v1",
    # no OpenAI optional parameter is sent (``Models``' default), each is noted on the trace:
    # quality, style, background, user...; its reference has no such field
    models=Models(match=match, fallback=GENERATE),
    inputs=Inputs(encode="data_uri", mask="none"),
    batch=4,
    batch_option="max_n_per_call",
    keys=Keys(optional=frozenset({"steps"}), credentials=("api_key",)),
    setup=setup,
)
