"""``azure/<model>``: OpenAI image models deployed on Azure OpenAI (Azure AI Foundry).

``POST {endpoint}/openai/deployments/{deployment}/images/generations?api-version=...`` (JSON)
and ``.../images/edits`` (multipart), authenticated with the ``api-key`` header (or a Microsoft
Entra ID token as ``Authorization: Bearer``). Bodies and answers are OpenAI's, minus ``model``:
the deployment in the path picks the model. Docs:
https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/dall-e and
https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference-preview (image generation).

Parameters: what each OpenAI model takes, by OpenAI's rules (``openai.adjust``: the same
families, translations and trace notes).

What Azure does not serve, so the routing plan skips it instead of sending it: variations
(no endpoint), WEBP output (``output_format`` is png or jpeg on Azure, per the how-to above),
and edits on DALL·E models (Azure edits are gpt-image only).

Config: ``base_url`` (the resource endpoint, e.g. https://myres.openai.azure.com), ``api_key``
or ``access_token``, ``api_version`` (default ``2025-04-01-preview``, the first to serve
gpt-image-1; ``v1`` selects the GA ``/openai/v1/images/...`` API with the deployment in the
body), ``deployments`` (model → deployment name; the model name itself by default).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

from ...config import ProviderConfig
from ..core.call import Call, Wire
from ..core.spec import Calls, Keys, Models, ProviderSpec
from . import openai
from .openai import OpenAIModel

DEFAULT_API_VERSION = "2025-04-01-preview"
FORMATS = frozenset({"png", "jpeg"})


def on_azure(entry: OpenAIModel, *, edits: bool = True) -> OpenAIModel:
    """An OpenAI model's row as Azure serves it."""
    caps = entry.caps
    operations = caps.operations - {"variations"} - (set() if edits else {"edits"})
    return dataclasses.replace(
        entry,
        caps=dataclasses.replace(
            caps, operations=operations, output_formats=caps.output_formats & FORMATS
        ),
    )


MODELS = {
    name: on_azure(entry, edits=not name.startswith("dall-e"))
    for name, entry in openai.MODELS.items()
}
# (OpenAI's row, Azure's): looked up by identity, since two rows may compare equal
_BY_RULE = [(entry, on_azure(entry)) for entry in (openai.GPT_IMAGE, openai.GPT_IMAGE_2)]


def match(model: str) -> OpenAIModel | None:
    found = openai.match(model)
    return next((azure for entry, azure in _BY_RULE if entry is found), None)


def build(call: Call[OpenAIModel]) -> Wire:
    body = openai.fields(call)
    version: str = call.settings["api_version"]
    deployment = call.settings["deployments"].get(call.model, call.model)
    operation = call.request.operation
    if version == "v1":  # the v1 API names the deployment in the body
        body["model"] = deployment
        return openai.wire(call, f"/openai/v1/images/{operation}", body, None)
    del body["model"]  # the deployment in the path chooses the model
    path = f"/openai/deployments/{quote(deployment, safe='')}/images/{operation}"
    return openai.wire(call, path, body, {"api-version": version})


def stream(call: Call[OpenAIModel]) -> Wire | None:
    """gpt-image deployments stream like OpenAI's (``stream``, ``partial_images``), per
    https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/dall-e (Streaming)."""
    return openai.streaming(call, build(call))


def auth(config: ProviderConfig) -> dict[str, str]:
    token = config.option("access_token")
    if token:
        return {"Authorization": f"Bearer {token}"}
    return {"api-key": config.api_key} if config.api_key else {}


def setup(config: ProviderConfig) -> dict[str, Any]:
    return {
        "api_version": config.api_version or DEFAULT_API_VERSION,
        "deployments": dict(config.deployments),
    }


SPEC = ProviderSpec(
    type="azure",
    calls=Calls(build, openai.parse, stream=stream),
    base_url="",  # no default: every Azure resource has its own endpoint
    auth=auth,
    # OpenAI's models, OpenAI's rules (what each family takes)
    models=Models(MODELS, match=match, fallback=on_azure(openai.UNKNOWN), notes=openai.param_notes),
    keys=Keys(
        required=(("base_url",),),
        optional=frozenset({"access_token", "organization"}),
        credentials=("api_key", "access_token"),
    ),
    setup=setup,
)
