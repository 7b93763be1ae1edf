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
from ...request import OPENAI_FIELDS, ImageRequest, ImageResult, UploadedFile
from ..base import Capabilities
from ..core.answers import openai_images
from ..core.call import Answer, Call, Wire
from ..core.sizes import GridSizes
from ..core.spec import Calls, Keys, Models, ModelSpec, ProviderSpec


@dataclass(frozen=True, slots=True)
class OpenAIModel(ModelSpec):
    base64_only: bool = False  # gpt-image: always answers base64 and rejects response_format
    # the parameters this model takes (None: all the operation's; others are left out, noted)
    takes: frozenset[str] | None = None
    # quality values this model names otherwise: value → what is sent (None: left out)
    quality: Mapping[str, str | None] = dataclasses.field(default_factory=dict, hash=False)


# What each family takes, per the parameter docstrings of openai-python's
# ``resources/images.py`` (https://github.com/openai/openai-python): ``style`` is DALL·E 3's,
# ``background``/``moderation``/``output_*``/``input_fidelity`` the GPT image models', and
# ``quality`` is hd|standard on DALL·E 3, low|medium|high|auto on gpt-image, standard only on
# DALL·E 2. ``response_format`` is never sent to gpt-image (the gateway answers URLs itself).
_COMMON = frozenset({"prompt", "n", "size", "user"})
DALL_E_2_TAKES = _COMMON | {"response_format", "quality"}
DALL_E_3_TAKES = _COMMON | {"response_format", "quality", "style"}
GPT_IMAGE_TAKES = _COMMON | {
    "quality",
    "background",
    "moderation",
    "output_format",
    "output_compression",
    "input_fidelity",
}
GPT_QUALITY: dict[str, str | None] = {"hd": "high", "standard": "medium"}
DALL_E_3_QUALITY: dict[str, str | None] = {
    "high": "hd",
    "medium": "standard",
    "low": "standard",
    "auto": None,
}
DALL_E_2_QUALITY: dict[str, str | None] = dict.fromkeys(("hd", "high", "medium", "low", "auto"))


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
GPT_IMAGE = OpenAIModel(
    GPT_IMAGE_CAPS, base64_only=True, takes=GPT_IMAGE_TAKES, quality=GPT_QUALITY
)
GPT_IMAGE_2 = OpenAIModel(
    dataclasses.replace(
        GPT_IMAGE_CAPS,
        sizes=GridSizes(GPT_SIZES, step=16, max_ratio=3, max_edge=3840, max_pixels=3840 * 2160),
    ),
    base64_only=True,
    takes=GPT_IMAGE_TAKES,
    quality=GPT_QUALITY,
)
MODELS: dict[str, OpenAIModel] = {
    "dall-e-2": OpenAIModel(
        Capabilities(
            operations=frozenset({"generations", "edits", "variations"}),
            sizes=frozenset({"256x256", "512x512", "1024x1024"}),
            max_n=10,
            mask=True,
        ),
        takes=DALL_E_2_TAKES,
        quality=DALL_E_2_QUALITY,
    ),
    "dall-e-3": OpenAIModel(
        Capabilities(
            operations=frozenset({"generations"}),
            sizes=frozenset({"1024x1024", "1792x1024", "1024x1792"}),
            max_n=1,
        ),
        takes=DALL_E_3_TAKES,
        quality=DALL_E_3_QUALITY,
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
# The body fields of each operation, from the request parameter table's ``openai`` column.
FIELDS = OPENAI_FIELDS
PATHS = {op: f"/images/{op}" for op in FIELDS}
MINI_LACKS = frozenset({"input_fidelity"})  # gpt-image-1-mini: "unsupported" (the docstring)


def match(model: str) -> OpenAIModel | None:
    if model.startswith("gpt-image-2"):
        return GPT_IMAGE_2
    if model.startswith(("gpt-image", "chatgpt-image")):
        return GPT_IMAGE
    return None


def adjust(
    entry: OpenAIModel, model: str, request: ImageRequest
) -> tuple[dict[str, Any], list[str]]:
    """The parameters ``model`` is sent (those the caller gave that the operation and the
    model take, ``quality`` in the model's own words), and a note for each one left out or
    renamed. A value no OpenAI model takes never gets here: the body models refuse it."""
    params = request.params()
    takes = entry.takes
    if takes is not None and model.startswith("gpt-image-1-mini"):
        takes = takes - MINI_LACKS
    out: dict[str, Any] = {}
    said: list[str] = []
    for name in FIELDS[request.operation]:
        if name not in params:
            continue
        value = params[name]
        if takes is not None and name not in takes:
            if name != "response_format":  # gpt-image: the gateway answers as asked itself
                said.append(f"{name}={value!r} ignored: {model} does not take it")
            continue
        if name == "quality" and value in entry.quality:
            sent = entry.quality[value]
            if sent is None:
                said.append(f"quality={value!r} ignored: {model} does not take it")
                continue
            said.append(f"quality={value!r} sent to {model} as {sent!r}")
            value = sent
        out[name] = value
    return out, said


def fields(call: Call[OpenAIModel]) -> dict[str, Any]:
    """``model`` and the parameters the caller gave that the operation and model take."""
    body, _ = adjust(call.entry, call.model, call.request)
    return {"model": call.model, **body}


def param_notes(entry: OpenAIModel, model: str, request: ImageRequest) -> list[str]:
    """What ``fields`` leaves out or renames for ``model`` (the trace's notes)."""
    return adjust(entry, model, request)[1]


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


def streaming(call: Call[OpenAIModel], built: Wire) -> Wire | None:
    """``built`` asking for the answer as events, on gpt-image models only (DALL·E does not
    stream): ``stream`` and ``partial_images`` added to the JSON or multipart body.
    https://platform.openai.com/docs/api-reference/images/create#images-create-stream"""
    if not call.entry.base64_only:
        return None
    partial = call.request.partial_images
    if built.json is not None:
        extra: dict[str, Any] = {"stream": True}
        if partial is not None:
            extra["partial_images"] = partial
        return dataclasses.replace(built, json={**built.json, **extra})
    text = [*(built.fields or []), ("stream", "true")]
    if partial is not None:
        text.append(("partial_images", str(partial)))
    return dataclasses.replace(built, fields=text)


def stream(call: Call[OpenAIModel]) -> Wire | None:
    return streaming(call, build(call))


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


# what ``GET /v1/models`` lists (``match`` serves any ``gpt-image*``, ``chatgpt-image*`` name)
LISTED = ("dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2")

SPEC = ProviderSpec(
    type="openai",
    calls=Calls(build, parse, stream=stream),
    base_url="https://api.openai.com/v1",
    auth=auth,
    models=Models(MODELS, match=match, fallback=UNKNOWN, listed=LISTED, notes=param_notes),
    # a custom base_url may be a keyless OpenAI-compatible server
    keys=Keys(optional=frozenset({"organization"}), credentials=("api_key", "base_url")),
)
COMPATIBLE = dataclasses.replace(  # its own models: GET /v1/models lists what config names
    SPEC,
    type="openai-compatible",
    models=dataclasses.replace(SPEC.models, listed=()),
    keys=Keys(optional=frozenset({"organization"})),
)
