"""``bedrock/<modelId>``: Amazon Bedrock's ``InvokeModel``, declared as a spec.

Wire format: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html
(``POST https://bedrock-runtime.{region}.amazonaws.com/model/{modelId}/invoke``, JSON body,
SigV4 service ``bedrock`` (``sigv4.py``); errors are the status plus ``x-amzn-ErrorType`` and
``{"message"}``). The bodies per family are in ``amazon.py`` (Titan, Nova Canvas) and
``stability.py``; the model table (batches of 5 or 1, Nova's seed range) in ``models.py``.

Config: ``region`` (else ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / ``us-east-1``),
``access_key_id`` / ``secret_access_key`` / ``session_token`` or botocore's chain, or
``api_key`` for a Bedrock API key; ``image_strength`` for Stability's image-to-image.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from ...config import ProviderConfig
from ...errors import UpstreamHTTPError
from ...request import ImageResult
from ..core.call import Answer, Call, Send, Wire
from ..core.policy import CODE as POLICY
from ..core.polling import interval_option
from ..core.spec import Calls, Errors, Inputs, Keys, Models, ProviderSpec
from . import amazon, stability
from .models import TABLE, BedrockModel, match
from .sigv4 import AwsCredentials, sign

# x-amzn-ErrorType → (status, orq code) where the plain status would mislead.
ERROR_TYPES = {
    "ThrottlingException": (429, "rate_limit_exceeded"),
    "ServiceQuotaExceededException": (429, "rate_limit_exceeded"),
    "ModelNotReadyException": (503, "provider_overloaded"),
    "ModelErrorException": (502, "provider_error"),
    "UnrecognizedClientException": (401, "provider_credential_invalid"),
    "InvalidSignatureException": (401, "provider_credential_invalid"),
    "ExpiredTokenException": (401, "provider_credential_invalid"),
    "AccessDeniedException": (403, "insufficient_scope"),
}
OPTIONS = {"access_key_id", "secret_access_key", "session_token", "image_strength"}


def region_of(config: ProviderConfig) -> str:
    return (
        config.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )


def setup(config: ProviderConfig) -> Mapping[str, Any]:
    strength = min(1.0, interval_option(config.option("image_strength"), 0.5))
    return {
        "region": region_of(config),
        "aws": AwsCredentials(config, config.type or "bedrock"),
        "image_strength": strength,
    }


async def prepare(call: Call[BedrockModel], send: Send) -> None:
    if call.request.operation == "generations":
        return
    if call.entry.family == "stability":
        await stability.prepare(call)
    else:
        await amazon.prepare(call)


def build(call: Call[BedrockModel]) -> Wire:
    stable = call.entry.family == "stability"
    body = stability.body(call) if stable else amazon.body(call)
    path = f"/model/{quote(call.model, safe='')}/invoke"  # ``:`` and ``/`` in ids: %-encoded
    return Wire(path, json=body, encoded=True)


def parse(call: Call[BedrockModel], answer: Answer) -> ImageResult:
    if call.entry.family == "stability":
        return stability.parse(call, answer)
    return amazon.parse(call, answer)


def typed(message: str) -> tuple[str, str]:
    """(AWS error type, message): from the ``Type: message`` the runner wrote
    (``spec.errors.type_header``), or from a body of AWS's JSON protocols
    (``{"__type", "Message"}``) that was left whole as the message."""
    if message.startswith("{"):
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("Message"), str):
            kind = str(doc.get("__type") or "").split("#")[-1][:100]
            return kind, f"{kind}: {doc['Message']}" if kind else doc["Message"]
    kind, sep, _ = message.partition(": ")
    return (kind if sep else ""), message


def errors(exc: UpstreamHTTPError) -> UpstreamHTTPError:
    """The status an AWS error type means, where the plain status would mislead."""
    kind, message = typed(exc.message)
    mapped = ERROR_TYPES.get(kind)
    if exc.code == POLICY or (mapped is None and message == exc.message):
        return exc
    status, code = mapped if mapped is not None else (exc.status, exc.code)
    return UpstreamHTTPError(
        message, status=status, code=code, retry_after_s=exc.retry_after_s, param=exc.param
    )


SPEC = ProviderSpec(
    type="bedrock",
    calls=Calls(build, parse, sign=sign),  # ``sign``: SigV4 (or the Bedrock API key)
    default_url=lambda config: f"https://bedrock-runtime.{region_of(config)}.amazonaws.com",
    # per model, what each takes (the rows' own ``params``): ``models.py``
    models=Models(TABLE, match=match),
    # masks are made by ``prepare`` (black = edit, from the alpha when none)
    inputs=Inputs(mask="none", prepare=prepare),
    errors=Errors(policy_statuses=frozenset({400}), remap=errors, type_header="x-amzn-ErrorType"),
    keys=Keys(optional=frozenset(OPTIONS)),  # credentials: botocore's chain when none is set
    setup=setup,
)
