"""``xai/<model>``: xAI's Grok image models.

``POST https://api.x.ai/v1/images/generations`` and ``/v1/images/edits`` with
``Authorization: Bearer``; OpenAI-style answers (``{data: [{b64_json | url, mime_type?,
revised_prompt?}]}``). Docs: https://docs.x.ai/docs/guides/image-generation and
https://docs.x.ai/docs/api-reference (Image generations, Image edits).

xAI rejects ``size``, ``quality`` and ``style`` ("Argument not supported"), so they are never
sent; of OpenAI's optional parameters only ``user`` is in its reference (``PARAMS``), the others
are left out and noted. Translation: ``size`` → ``aspect_ratio`` (and ``resolution: "2k"`` when
the longest side asks for more than 1536 px) on the Grok Imagine models; ``grok-2-image``
renders 1024x768 only.
``n`` → ``n`` (1–10 per call). Edits take a JSON body with the input image(s) as ``data:``
URIs (``image: {url, type: "image_url"}``, or ``images: [...]`` for several, up to 3). Output
is JPEG. xAI answers a bad key with a 400; it becomes a 401 here. Config: ``api_key``,
``base_url``, ``headers``.
"""

from __future__ import annotations

from ...errors import UpstreamHTTPError
from ...request import ImageResult
from ..base import Capabilities
from ..core.answers import openai_images
from ..core.call import Answer, Call, Wire
from ..core.params import PASS, Params, value
from ..core.sizes import RatioSizes, aspect_ratio, side_tier
from ..core.spec import Calls, Errors, Inputs, Models, ModelSpec, ProviderSpec
from .openai import json_head

RATIOS = ("1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "2:1", "1:2", "20:9", "9:20")
JPEG = frozenset({"jpeg"})
# ``user``: "A unique identifier representing your end-user" (https://docs.x.ai/docs/api-reference,
# Image generations); no quality, style, background or moderation field there
PARAMS: Params = {"user": PASS}
GROK_2 = ModelSpec(
    Capabilities(
        operations=frozenset({"generations"}),
        sizes=frozenset({"auto", "1024x768"}),
        max_n=10,
        output_formats=JPEG,
    )
)
IMAGINE = ModelSpec(
    Capabilities(
        operations=frozenset({"generations", "edits"}),
        sizes=RatioSizes(RATIOS),
        max_n=10,
        output_formats=JPEG,
        max_images=3,
    )
)


def match(model: str) -> ModelSpec | None:
    return GROK_2 if model.startswith("grok-2-image") else None


def build(call: Call[ModelSpec]) -> Wire:
    request = call.request
    body = json_head(call, "b64_json")
    if call.entry is not GROK_2 and request.size and request.size != "auto":
        body["aspect_ratio"] = aspect_ratio(request.size, RATIOS)
        if side_tier(request.size, ((1536, "1k"), (8192, "2k"))) == "2k":
            body["resolution"] = "2k"
    user = value(PARAMS, "user", request)
    if user:
        body["user"] = user
    refs = [{"url": url, "type": "image_url"} for url in call.images]
    if len(refs) == 1:
        body["image"] = refs[0]
    elif refs:
        body["images"] = refs
    return Wire(f"/images/{request.operation}", json=body)


def parse(call: Call[ModelSpec], answer: Answer) -> ImageResult:
    result = openai_images(answer.doc(), call.provider)
    result.output_format = "jpeg"
    result.usage = None  # xAI reports cost, not tokens
    return result


def errors(exc: UpstreamHTTPError) -> UpstreamHTTPError:
    """xAI answers a bad API key with a 400: it is the operator's 401."""
    if exc.status == 400 and "api key" in exc.message.lower():
        return UpstreamHTTPError(
            exc.message, status=401, code="provider_credential_invalid", param=exc.param
        )
    return exc


SPEC = ProviderSpec(
    type="xai",
    calls=Calls(build, parse),
    base_url="https://api.x.ai/v1",
    models=Models(match=match, fallback=IMAGINE, params=PARAMS),
    inputs=Inputs(encode="data_uri", mask="none"),
    errors=Errors(remap=errors),  # a bad key is a 400 there
)
