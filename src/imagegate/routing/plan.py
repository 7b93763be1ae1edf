"""The candidate chain: ``[model] + fallbacks`` (spine version: a single candidate)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..errors import UnsupportedEngine
from ..providers.base import Provider
from ..providers.registry import Registry, split_model
from ..request import ImageRequest


@dataclass(slots=True)
class Candidate:
    model: str  # as the caller wrote it: provider/model
    provider_name: str
    model_id: str  # the part after provider/
    provider: Provider


@dataclass(slots=True)
class Skip:
    model: str
    reason: str


@dataclass(slots=True)
class Plan:
    candidates: list[Candidate]
    skipped: list[Skip] = field(default_factory=list)


def build_plan(request: ImageRequest, registry: Registry, rng: random.Random) -> Plan:
    provider_name, model_id = split_model(request.model)
    provider = registry.get(provider_name)
    if provider is None:
        raise UnsupportedEngine(f"model {request.model!r}: provider not configured", param="model")
    return Plan([Candidate(request.model, provider_name, model_id, provider)])
