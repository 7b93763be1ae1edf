"""The two functions both Google specs share: a call's body by the model's wire method
(``generateContent``, or Imagen's ``predict`` for generation or mask editing) and its answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...config import ProviderConfig
from ...request import ImageResult
from ..core.call import Answer, Call
from . import content, imagen
from .models import GoogleModel


def body(call: Call[GoogleModel]) -> dict[str, Any]:
    if call.entry.method == "generateContent":
        return content.body(call)
    if call.request.operation == "edits":
        return imagen.edit_body(call)
    return imagen.generate_body(call, vertex=call.settings["vertex"])


def parse(call: Call[GoogleModel], answer: Answer) -> ImageResult:
    if call.entry.method == "generateContent":
        return content.parse(call, answer)
    return imagen.parse(call, answer)


def extra_parameters(config: ProviderConfig) -> Mapping[str, Any]:
    """The entry's ``parameters``: extra Imagen ``parameters`` (e.g. ``personGeneration``)."""
    found = config.option("parameters")
    return dict(found) if isinstance(found, Mapping) else {}
