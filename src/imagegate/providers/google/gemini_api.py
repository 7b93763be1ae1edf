"""``google/<model>``: the Gemini API (a Google AI Studio key).

Gemini image models (``google/gemini-2.5-flash-image``...) go through ``generateContent``
(``POST {base}/v1beta/models/{model}:generateContent``), Imagen models
(``google/imagen-4.0-generate-001``...) through ``predict``; both authenticate with the
``x-goog-api-key`` header. Docs: https://ai.google.dev/gemini-api/docs/image-generation,
https://ai.google.dev/gemini-api/docs/imagen, https://ai.google.dev/api/generate-content.

Imagen on the Gemini API: Google's python-genai SDK stopped calling ``predict`` there
(``generate_images`` is Vertex-only since
https://github.com/googleapis/python-genai/commit/43ef621ffafde6b9a4591188a98d479a0c55d679).
We still speak the endpoint's wire format (taken from the SDK just before that change), but
``vertex/imagen-*`` is the supported route; see docs/providers/google.md.

Wire translation lives in ``content.py`` and ``imagen.py`` (shared with ``vertex/``), the
model table and Google's error conventions in ``models.py``. Config: ``api_key``,
``base_url`` (default https://generativelanguage.googleapis.com), ``api_version`` (default
``v1beta``), ``headers``, and ``parameters`` (extra Imagen ``parameters``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from ...config import ProviderConfig
from ..core.call import Call, Wire
from ..core.spec import Auth, Calls, Errors, Inputs, Keys, Models, ProviderSpec
from . import models, wire
from .models import GoogleModel


def build(call: Call[GoogleModel]) -> Wire:
    version = call.settings["version"]
    return Wire(f"/{version}/models/{call.model}:{call.entry.method}", json=wire.body(call))


def setup(config: ProviderConfig) -> Mapping[str, Any]:
    return {
        "vertex": False,
        "version": config.api_version or "v1beta",
        "parameters": wire.extra_parameters(config),
    }


SPEC = ProviderSpec(
    type="google",
    calls=Calls(build, wire.parse),
    base_url="https://generativelanguage.googleapis.com",
    auth=Auth("header", name="x-goog-api-key"),
    # per model, what each takes (the rows' own ``params``): ``models.py``
    models=Models(models.table(vertex=False), match=partial(models.row, vertex=False)),
    inputs=Inputs(encode="b64", mask="none"),  # input images as base64 ``inlineData``
    errors=Errors(remap=models.errors),
    keys=Keys(optional=frozenset({"parameters"}), credentials=("api_key",)),
    setup=setup,
)
