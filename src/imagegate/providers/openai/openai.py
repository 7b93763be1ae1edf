"""``openai/<model>``: the OpenAI Images API (generations JSON; edits and variations multipart).

Wire format: https://platform.openai.com/docs/api-reference/images
Only parameters the caller gave are sent; ``response_format`` is never sent to gpt-image
models (they always answer base64 and reject the field). The same spec serves any
OpenAI-compatible images server through ``base_url`` (type ``openai-compatible``).

gpt-image-2 takes any ``WIDTHxHEIGHT`` with both sides multiples of 16, an aspect ratio between
1:3 and 3:1 and at most 3840x2160 (the ``size`` docstring of openai-python's
``src/openai/resources/images.py``, https://github.com/openai/openai-python), besides ``auto``
and the three standard sizes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...config import ProviderConfig
from ...request import ImageResult, UploadedFile
from ..base import Capabilities
from ..core.answers import openai_images
from ..core.sizes import GridSizes
from ..core.spec import Answer, Call, Keys, ModelSpec, ProviderSpec, Wire


@dataclass(frozen=True, slots=True)
class OpenAIModel(ModelSpec):
    base64_only: bool = False  # gpt-image: always answers base64 and rejects response_format


ALL_FORMATS = frozenset({"png", "jpeg", "webp"})
GPT_SIZES = frozenset({"auto", "1024x1024", "1536x1024", "1024x1536"})
GPT_IMAGE_CAPS = Capabilities(
    operations=frozenset({"generations", "edits"}),
    sizes=GPT_SIZES,
    max_n=10,
    output_formats=ALL_FORMATS,
    max_images=16,
    mask=True,
)
GPT_IMAGE = OpenAIModel(GPT_IMAGE_CAPS, base64_only=True)
GPT_IMAGE_2 = OpenAIModel(
    dataclasses.replace(
        GPT_IMAGE_CAPS,
        sizes=GridSizes(GPT_SIZES, step=16, max_ratio=3, max_edge=3840, max_pixels=3840 * 2160),
    ),
    base64_only=True,
)
MODELS: dict[str, OpenAIModel] = {
    "dall-e-2": OpenAIModel(
        Capabilities(
            operations=frozenset({"generations", "edits", "variations"}),
            sizes=frozenset({"256x256", "512x512", "1024x1024"}),
            max_n=10,
            mask=True,
        )
    ),
    "dall-e-3": OpenAIModel(
        Capabilities(
            operations=frozenset({"generations"}),
            sizes=frozenset({"1024x1024", "1792x1024", "1024x1792"}),
            max_n=1,
        )
    ),
}
# Any other name (an OpenAI-compatible server's own models): let the server decide.
UNKNOWN = OpenAIModel(
    Capabilities(
        operations=frozenset({"generations", "edits", "variations"}),
        output_formats=ALL_FORMATS,
        max_images=16,
        mask=True,
    )
)
FIELDS = {
    "generations": (
        "prompt", "n", "size", "quality", "style", "background", "moderation",
        "output_format", "output_compression", "response_format", "user",
    ),
    "edits": (
        "prompt", "n", "size", "quality", "background", "output_format",
        "output_compression", "response_format", "user",
    ),
    "variations": ("n", "size", "response_format", "user"),
}  # fmt: skip
PATHS = {op: f"/images/{op}" for op in FIELDS}


def match(model: str) -> OpenAIModel | None:
    if model.startswith("gpt-image-2"):
        return GPT_IMAGE_2
    if model.startswith(("gpt-image", "chatgpt-image")):
        return GPT_IMAGE
    return None


def fields(call: Call[OpenAIModel]) -> dict[str, Any]:
    """``model`` and the parameters the caller gave that the operation takes."""
    params = call.request.params()
    out: dict[str, Any] = {"model": call.model}
    for name in FIELDS[call.request.operation]:
        if name in params:
            out[name] = params[name]
    if call.entry.base64_only:
        out.pop("response_format", None)
    return out


def json_head(call: Call[Any], response_format: str) -> dict[str, Any]:
    """How the JSON bodies of OpenAI-like APIs (xAI, Together) begin: the model, the prompt,
    this call's share of ``n``, and the answer asked as base64."""
    return {
        "model": call.model,
        "prompt": call.request.prompt or "",
        "n": call.count,
        "response_format": response_format,
    }


def uploads(call: Call[OpenAIModel]) -> list[tuple[str, UploadedFile]]:
    """``image`` (``image[]`` when several; variations take one), then the mask on edits."""
    request = call.request
    images = request.images if request.operation == "edits" else request.images[:1]
    name = "image[]" if len(images) > 1 else "image"
    files = [(name, upload) for upload in images]
    if call.mask is not None:
        files.append(("mask", call.mask))
    return files


def wire(
    call: Call[OpenAIModel], path: str, body: dict[str, Any], params: Mapping[str, str] | None
) -> Wire:
    """Generations as JSON; edits and variations as multipart."""
    if call.request.operation == "generations":
        return Wire(path, json=body, params=params)
    text = [(key, str(value)) for key, value in body.items()]
    return Wire(path, fields=text, files=uploads(call), params=params)


def build(call: Call[OpenAIModel]) -> Wire:
    return wire(call, PATHS[call.request.operation], fields(call), None)


def parse(call: Call[OpenAIModel], answer: Answer) -> ImageResult:
    return openai_images(answer.doc(), call.provider)


def auth(config: ProviderConfig) -> dict[str, str]:
    headers = {}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    organization = config.option("organization")
    if organization:
        headers["OpenAI-Organization"] = str(organization)
    return headers


SPEC = ProviderSpec(
    type="openai",
    build=build,
    parse=parse,
    base_url="https://api.openai.com/v1",
    auth=auth,
    models=MODELS,
    match=match,
    fallback=UNKNOWN,
    mask="transparent",
    # a custom base_url may be a keyless OpenAI-compatible server
    keys=Keys(optional=frozenset({"organization"}), credentials=("api_key", "base_url")),
)
COMPATIBLE = dataclasses.replace(
    SPEC, type="openai-compatible", keys=Keys(optional=frozenset({"organization"}))
)
