"""What a provider does with OpenAI's optional image parameters, declared as data.

OpenAI's Images API has parameters most providers have no word for (``style``, ``background``,
``moderation``...). A spec (or one row of its model table) lists, per parameter, whether it is
sent as is (``PASS``) or in the provider's own words (``Sent(wire=..., values=...)``); anything
it does not list is left out. ``value`` gives the body builder what to send and ``notes`` says
on the trace what was left out or translated, both from the same declaration, so the body and
the notes cannot disagree::

    PARAMS = {"quality": Sent(values={"hd": "premium", "standard": "standard"}), "user": PASS}
    value(PARAMS, "quality", request)      # 'premium' when the request says quality='hd'
    notes(PARAMS, "nova", request)         # ["quality='hd' sent to nova as 'premium'", ...]

The notes read like the OpenAI family's (``openai.param_notes``), which keeps its own rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ...request import ImageRequest

# OpenAI's optional parameters that a provider may lack (besides ``partial_images``, which only
# a streaming provider honours). ``size``, ``n``, ``output_format`` and the inputs are not here:
# a model that cannot satisfy them is skipped by the routing plan instead (``Capabilities``).
NOTED: tuple[str, ...] = (
    "quality",
    "style",
    "background",
    "moderation",
    "input_fidelity",
    "output_compression",
    "user",
)
Handling = Literal["as is", "translated", "left out"]


@dataclass(frozen=True, slots=True)
class Sent:
    """A parameter the provider takes: as is, or renamed (``wire``, for the note) and/or in
    its own values (``values``: OpenAI's value → the provider's; a value not listed is left
    out). ``needs``: another request field's value it only goes with (else it is left out)."""

    wire: str | None = None
    values: Mapping[str, str] | None = None
    needs: tuple[str, str] | None = None

    @property
    def handling(self) -> Handling:
        return "as is" if self == PASS else "translated"


PASS = Sent()
Params = Mapping[str, Sent]


@runtime_checkable
class NotesParams(Protocol):
    """A provider that says what it leaves out of or translates in a request (for the trace
    of the model that served)."""

    def param_notes(self, model: str, request: ImageRequest) -> list[str]: ...


def handling(params: Params, name: str) -> Handling:
    """How ``name`` travels to the provider, in the words of docs/openai-compatibility.md."""
    rule = params.get(name)
    return "left out" if rule is None else rule.handling


def value(params: Params, name: str, request: ImageRequest) -> Any:
    """What the provider is sent for ``name`` (None: nothing)."""
    rule, given = params.get(name), getattr(request, name)
    if rule is None or given is None:
        return None
    if rule.needs is not None and getattr(request, rule.needs[0]) != rule.needs[1]:
        return None
    if rule.values is not None:
        return rule.values.get(given)
    return given


def notes(params: Params, model: str, request: ImageRequest, *, streams: bool) -> list[str]:
    """One note per parameter the caller gave that ``model`` is not sent as given."""
    said: list[str] = []
    for name in NOTED:
        given = getattr(request, name)
        if given is None:
            continue
        rule, sent = params.get(name), value(params, name, request)
        if rule is not None and rule.needs is not None and sent is None:
            field, wanted = rule.needs
            said.append(f"{name}={given!r} ignored: {model} takes it only with {field}={wanted!r}")
        elif sent is None:
            said.append(f"{name}={given!r} ignored: {model} does not take it")
        elif rule is not None and rule.wire is not None:
            said.append(f"{name}={given!r} sent to {model} as {rule.wire}={sent!r}")
        elif sent != given:
            said.append(f"{name}={given!r} sent to {model} as {sent!r}")
    if request.stream and request.partial_images and not streams:
        said.append(f"partial_images={request.partial_images!r} ignored: {model} does not stream")
    return said
