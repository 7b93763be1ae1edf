"""What the gateway can serve, as OpenAI's model objects (``GET /v1/models``).

Two kinds of entry, each ``{"id", "object": "model", "created", "owned_by"}`` plus our own
fields (``kind``, ``operations``, ``output_formats``, and for aliases ``models``, ``strategy``,
``params``):

- every configured alias (``models:`` in config), owned by ``imagegate``;
- every ``provider/model`` of every provider that is served (configured and credentialed):
  the names its model table lists (``Models.listed``, else the table's keys; adapters
  not yet declared as specs: their module's ``MODELS`` table), plus every ``provider/model``
  the config names (alias targets and routing, ``defaults.model``) — the only way to list a
  provider whose names are open-ended (openai-compatible servers, Google, Bedrock, the
  placeholder). A name whose capabilities refuse everything is left out.

Built once per gateway (config and registry do not change while it runs)::

    catalog = Catalog.build(gateway.config, gateway.registry)
    catalog.find("dall-e-3")       # bare names resolve through default_provider
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .aliases import qualified
from .config import Config
from .errors import GatewayError
from .providers.base import Capabilities, Provider
from .providers.core.runner import SpecProvider
from .providers.registry import Registry
from .routing.names import Names

OWNER = "imagegate"  # ``owned_by`` of aliases


def table_names(provider: Provider) -> list[str]:
    """The model names a provider's own table lists (empty when its names are open-ended)."""
    if isinstance(provider, SpecProvider):
        return provider.spec.models.names()
    table = getattr(sys.modules.get(type(provider).__module__), "MODELS", None)
    return [str(name) for name in table] if isinstance(table, Mapping) else []


def config_names(config: Config) -> list[str]:
    """Every provider/model the config names: alias targets and routing, defaults."""
    out: list[str] = []
    for alias in config.models.values():
        out += alias.targets()
        routing = alias.routing()
        if routing is not None:
            out += [f.model for f in routing.fallbacks or []]
            if routing.load_balancer is not None:
                out += [m.model for m in routing.load_balancer.models]
    for op in ("generations", "edits", "variations"):
        name = getattr(config.defaults.model, op)
        if name is not None and qualified(name):
            out.append(name)
    return out


def _sorted(values: Iterable[str]) -> list[str]:
    return sorted(set(values))


@dataclass(slots=True)
class Catalog:
    entries: dict[str, dict[str, Any]]
    names: Names

    @classmethod
    def build(cls, config: Config, registry: Registry, created: int | None = None) -> Catalog:
        created = int(time.time()) if created is None else created
        caps: dict[str, Capabilities] = {}
        wanted: dict[str, None] = {}  # provider/model names, in a stable order
        for provider_name in registry.names():
            provider = registry.get(provider_name)
            assert provider is not None
            wanted.update((f"{provider_name}/{m}", None) for m in table_names(provider))
        wanted.update((name, None) for name in config_names(config))
        models: dict[str, dict[str, Any]] = {}
        for full in wanted:
            provider_name, _, model = full.partition("/")
            provider = registry.get(provider_name)
            if provider is None:
                continue  # not served here (no entry, no credential, disabled)
            found = provider.capabilities(model)
            if found.refused is not None or not found.operations:
                continue
            caps[full] = found
            models[full] = {
                "id": full,
                "object": "model",
                "created": created,
                "owned_by": provider_name,
                "kind": "model",
                "operations": _sorted(found.operations),
                "output_formats": _sorted(found.output_formats),
            }
        entries: dict[str, dict[str, Any]] = {}
        for alias_name, alias in config.models.items():
            targets = alias.targets()
            served = [caps[t] for t in targets if t in caps]
            formats = {f for c in served for f in c.output_formats}
            if "output_format" in alias.params:
                formats = {alias.params["output_format"]} & formats
            entry: dict[str, Any] = {
                "id": alias_name,
                "object": "model",
                "created": created,
                "owned_by": OWNER,
                "kind": "alias",
                "models": targets,
                "operations": _sorted(op for c in served for op in c.operations),
                "output_formats": _sorted(formats),
                "params": dict(alias.params),
            }
            if alias.models is not None:
                entry["strategy"] = alias.strategy
            entries[alias_name] = entry
        entries.update(models)
        return cls(entries, Names.from_config(config))

    def list(self) -> list[dict[str, Any]]:
        return list(self.entries.values())

    def find(self, model_id: str) -> dict[str, Any] | None:
        """The entry for ``model_id``; a bare name that is no alias resolves through the
        default provider (and is answered under the name asked)."""
        found = self.entries.get(model_id)
        if found is not None or qualified(model_id):
            return found
        try:
            full = self.names.qualify(model_id, "model")
        except GatewayError:
            return None
        found = self.entries.get(full)
        return None if found is None else {**found, "id": model_id, "resolves_to": full}
