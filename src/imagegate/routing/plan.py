"""The candidate chain: which models a request may be served by, in the order they are tried.

Rules (docs/routing.md):

- without ``load_balancer``: ``[model] + fallbacks``;
- with it, the request's ``model`` is ignored: the load-balancer models come first in an order
  drawn by weight, then ``fallbacks`` in order;
- a model appears at most once; a candidate whose provider is not configured, or that cannot
  do what the request asks (operation, size, n, format...), is skipped and the skip recorded;
- nothing left is a 400 ``unsupported_engine`` whose message says why each model was skipped.

The load-balancer order is drawn up front: drawing the first model by weight, then the next
among the rest after each failure, gives the same distribution as drawing the whole order
without replacement at once, and it keeps ``execute`` free of randomness about models::

    plan = build_plan(request, registry, random.Random(7))
    [c.model for c in plan.candidates]   # e.g. ["b/m2", "a/m1", "c/fallback"]
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..errors import GatewayError, ProviderNotConfigured, UnsupportedEngine
from ..providers.base import Provider
from ..providers.registry import Registry, split_model
from ..request import ImageRequest

Source = Literal["model", "load_balancer", "fallback"]


@dataclass(slots=True)
class Candidate:
    """One model the request may be sent to."""

    model: str  # as the caller wrote it: provider/model
    provider_name: str
    model_id: str  # the part after provider/
    provider: Provider
    source: Source = "model"

    def param_notes(self, request: ImageRequest) -> list[str]:
        """What this model's provider leaves out of or translates in ``request`` (for the trace
        of the candidate that served), from the providers that say so (``NotesParams``)."""
        notes = getattr(self.provider, "param_notes", None)  # not isinstance: a runtime
        if notes is None:  # Protocol check walks the class on every call
            return []
        found: list[str] = notes(self.model_id, request)
        return [f"params: {note}" for note in found]


@dataclass(slots=True)
class Skip:
    """A model left out of the chain, and why (recorded on the trace)."""

    model: str
    reason: str
    param: str = "model"  # the request field at fault
    unconfigured: bool = False  # its provider is in the config but lacks a credential


@dataclass(slots=True)
class Plan:
    candidates: list[Candidate]
    skipped: list[Skip] = field(default_factory=list)


def weighted_order(weighted: Sequence[tuple[str, float]], rng: random.Random) -> list[str]:
    """Sequential weighted draws without replacement: the order models are tried in.

    Each step picks among the models not drawn yet with probability weight / remaining weight,
    which is exactly "draw one, and on failure re-draw among the rest". Drawn in one sort
    (O(n log n)): each model gets the key ``log(u) / weight`` for a uniform ``u`` in (0, 1],
    and sorting by key, largest first, gives that same distribution over orders (an
    exponential race: ``-log(u) / w`` is exponential with rate ``w``, and the first to
    finish among the rest is the model drawn next, with probability w / remaining weight).
    """
    keyed = [(math.log(1.0 - rng.random()) / weight, i) for i, (_, weight) in enumerate(weighted)]
    keyed.sort(key=lambda pair: (-pair[0], pair[1]))
    return [weighted[i][0] for _, i in keyed]


def _resolve(
    model: str, source: Source, request: ImageRequest, registry: Registry
) -> Candidate | Skip:
    """A candidate for ``model``, or the reason it cannot be one."""
    provider_name, model_id = split_model(model)
    if not provider_name:
        return Skip(model, "not a provider/model name")
    provider = registry.get(provider_name)
    if provider is None:
        why = registry.unavailable.get(provider_name, "not configured")
        unconfigured = provider_name in registry.unconfigured
        return Skip(model, f"provider {provider_name!r}: {why}", unconfigured=unconfigured)
    refusal = provider.capabilities(model_id).refusal(request)
    if refusal is not None:
        param, reason = refusal
        return Skip(model, reason, param)
    return Candidate(model, provider_name, model_id, provider, source)


def _add(plan: Plan, found: Candidate | Skip) -> None:
    if isinstance(found, Skip):
        plan.skipped.append(found)
    else:
        plan.candidates.append(found)


def build_plan(request: ImageRequest, registry: Registry, rng: random.Random) -> Plan:
    """The ordered candidates for ``request``; raises 400 ``unsupported_engine`` if none."""
    plan = Plan([])
    opts = request.options
    seen: set[str] = set()
    if opts.load_balancer is not None:
        weights: dict[str, float] = {}
        for entry in opts.load_balancer.models:
            weights.setdefault(entry.model, entry.weight)  # a model at most once: first wins
        found = {m: _resolve(m, "load_balancer", request, registry) for m in weights}
        # Unusable models stay out of the draw: the usable ones keep the same relative
        # order as in a draw over all of them where the unusable are skipped.
        usable = [(m, w) for m, w in weights.items() if isinstance(found[m], Candidate)]
        for model in weighted_order(usable, rng):
            _add(plan, found[model])
        plan.skipped.extend(f for f in found.values() if isinstance(f, Skip))
        seen.update(weights)
    else:
        if request.model is None:  # ``names.Names.resolve`` runs first in the gateway
            raise UnsupportedEngine("model: field required", param="model")
        _add(plan, _resolve(request.model, "model", request, registry))
        seen.add(request.model)
    for fallback in opts.fallbacks or []:
        if fallback.model not in seen:
            seen.add(fallback.model)
            _add(plan, _resolve(fallback.model, "fallback", request, registry))
    if not plan.candidates:
        raise _nothing_left(plan.skipped)
    return plan


def _nothing_left(skipped: list[Skip]) -> GatewayError:
    """400 naming the field at fault when every skip blames the same one, else ``model``;
    503 ``provider_not_configured`` when every model's provider lacks its credentials (the
    operator's to fix, not the caller's)."""
    why = "; ".join(f"{s.model}: {s.reason}" for s in skipped)
    if skipped and all(s.unconfigured for s in skipped):
        return ProviderNotConfigured(f"no model can serve this request ({why})")
    params = {s.param for s in skipped}
    param = params.pop() if len(params) == 1 else "model"
    return UnsupportedEngine(f"no model can serve this request ({why})", param=param)
