"""``vertex/<model>``: Imagen (and Gemini image models) on Google Cloud Vertex AI.

``POST https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/{region}/
publishers/google/models/{model}:predict`` with ``Authorization: Bearer <token>``;
``instances[{prompt}]``, ``parameters{sampleCount, aspectRatio, ...}`` in,
``predictions[].bytesBase64Encoded`` out. Docs:
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api and
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api-edit.
Gemini image models (``vertex/gemini-2.5-flash-image``) use ``:generateContent`` on the same
path (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference).

Config: ``project_id`` (or ``project``), ``region``, ``base_url``, ``api_version`` (default
``v1``), credentials (``tokens.TokenSource``: ``access_token``, a key in ``credentials_file`` /
``credentials``, else Application Default Credentials) — or an ``api_key`` alone for Vertex
express mode (no project) — and ``parameters`` (extra Imagen ``parameters``).

The project: the entry's, else the one its key or ADC names (known once the credentials are
loaded, so ``prepare`` loads them before the first URL is made). Nothing is required at
startup, since ADC may supply both; only an ``access_token`` without a project is refused
there, since nothing could ever name the project (``keys.check``).

Host, as the python-genai SDK picks it (``BaseApiClient.__init__`` in
https://github.com/googleapis/python-genai/blob/main/google/genai/_api_client.py): region
``global``, or express mode without a region, → ``aiplatform.googleapis.com``; the
multi-regions ``us``/``eu`` → ``aiplatform.{region}.rep.googleapis.com``; any other region
(default ``us-central1``) → ``{region}-aiplatform.googleapis.com``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from ...config import ProviderConfig
from ..core.call import Call, Outgoing, Send, Wire
from ..core.failures import not_configured
from ..core.masks import edit_mask_png
from ..core.spec import Calls, Errors, Inputs, Keys, Models, ProviderSpec
from . import models, wire
from .models import GoogleModel

if TYPE_CHECKING:
    from ..core.runner import SpecProvider
    from .tokens import TokenSource

MULTI_REGIONS = frozenset({"us", "eu"})
OPTIONS = "project_id project credentials_file credentials access_token parameters".split()


def host_for(region: str) -> str:
    """The Vertex AI endpoint for ``region`` (see the module docstring)."""
    if region == "global":
        return "https://aiplatform.googleapis.com"
    if region in MULTI_REGIONS:
        return f"https://aiplatform.{region}.rep.googleapis.com"
    return f"https://{region}-aiplatform.googleapis.com"


def _project(config: ProviderConfig) -> str | None:
    found = config.option("project_id") or config.option("project")
    return str(found) if found else None


def explicit(config: ProviderConfig) -> bool:
    """Whether the entry names a token or a key (else: an ``api_key``, or ADC)."""
    return any(config.option(key) for key in ("access_token", "credentials", "credentials_file"))


def _uses_key(config: ProviderConfig) -> bool:
    """An ``api_key`` and no token or key configured: sent as ``x-goog-api-key``."""
    return bool(config.api_key) and not explicit(config)


def _region(config: ProviderConfig) -> str:
    express = _uses_key(config) and not _project(config)
    return config.region or ("global" if express else "us-central1")


def setup(config: ProviderConfig) -> Mapping[str, Any]:
    from .tokens import TokenSource  # google-auth (and requests): imported once configured

    return {
        "vertex": True,
        "version": config.api_version or "v1",
        "parameters": wire.extra_parameters(config),
        "project": _project(config),
        "region": _region(config),
        "use_key": _uses_key(config),
        "tokens": TokenSource(config, config.type or "vertex"),
    }


def _key_header(config: ProviderConfig) -> Mapping[str, str]:
    return {"x-goog-api-key": str(config.api_key)} if _uses_key(config) else {}


async def prepare(call: Call[GoogleModel], send: Send) -> None:
    """Once per request: the credentials loaded when they must name the project, and the
    all-white mask of a mask-less edit (the whole image may change)."""
    settings, request = call.settings, call.request
    tokens: TokenSource = settings["tokens"]
    if not settings["project"] and not settings["use_key"] and tokens.project is None:
        await tokens.token()  # loading the key or ADC names its project
    if call.entry.method == "predict" and request.operation == "edits" and not call.mask_text:
        blank = await edit_mask_png(None, request.images[0])
        call.mask_text = base64.b64encode(blank).decode("ascii")


async def sign(provider: SpecProvider[Any], outgoing: Outgoing) -> Mapping[str, str]:
    """The OAuth bearer token, refreshed off the loop ahead of expiry (``tokens.py``)."""
    settings = provider.settings
    if settings["use_key"]:
        return {}  # express mode: the key header is the entry's (``auth``)
    return {"Authorization": f"Bearer {await settings['tokens'].token()}"}


def build(call: Call[GoogleModel]) -> Wire:
    settings = call.settings
    project = settings["project"] or settings["tokens"].project
    if project:
        scope = f"projects/{project}/locations/{settings['region']}/"
    elif settings["use_key"]:
        scope = ""  # express mode: the key names the project
    else:
        why = "project_id is missing (or, for Vertex express mode, api_key alone)"
        raise not_configured(call.provider, why)
    target = f"publishers/google/models/{call.model}:{call.entry.method}"
    return Wire(f"/{settings['version']}/{scope}{target}", json=wire.body(call))


def check(config: ProviderConfig) -> str | None:
    """A static token names no project: such an entry could never make a URL."""
    if config.option("access_token") and not _project(config):
        return "needs one of project_id, project with an access_token (a token names no project)"
    return None


SPEC = ProviderSpec(
    type="vertex",
    calls=Calls(build, wire.parse, sign=sign),  # ``sign``: the OAuth token, per call
    default_url=lambda config: host_for(_region(config)),
    auth=_key_header,
    # per model, what each takes (the rows' own ``params``): ``models.py``
    models=Models(models.table(vertex=True), match=partial(models.row, vertex=True)),
    # input images as base64 (``inlineData``, Imagen's reference image); Imagen's mask: white
    # = edit; ``prepare``: the project from the key or ADC, a mask-less edit's blank mask
    inputs=Inputs(encode="b64", mask="white", prepare=prepare),
    errors=Errors(remap=models.errors),
    keys=Keys(optional=frozenset(OPTIONS), check=check),
    setup=setup,
)
