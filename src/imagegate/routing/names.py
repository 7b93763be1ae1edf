"""Model names as callers write them → the ``provider/model`` names the plan routes over.

OpenAI clients name bare models (``dall-e-3``) or none at all; the plan needs
``provider/model``. One step, after the stored prompt (which may set the model) and before the
cache key and the plan, rewrites the request in place:

- no model: ``defaults.model.<operation>``; else, with an ``openai`` entry, OpenAI's own
  default (``dall-e-2``, or ``gpt-image-1`` when a parameter only the GPT image models take is
  given: the ``model`` docstrings of openai-python's ``resources/images.py``,
  https://github.com/openai/openai-python); else a 400 naming ``model``;
- an alias (``models:`` in config, ``aliases.py``): its model, or its list as a load balancer
  or an ordered chain; its ``orq`` routing fills the fields the request left unset; its pinned
  parameters replace the request's (the operator's pin is the point of the alias);
- any other bare name: ``<default_provider>/<name>`` (``default_provider``, or ``openai``
  when unset and an ``openai`` entry exists); none → 400 naming ``model``;
- ``provider/model``: as written. Fallback and load-balancer names resolve the same way
  (an alias there must stand for one model; its pins do not apply to the request).

Every rewrite is noted on the trace (``requested_model`` keeps the name as asked)::

    names = Names.from_config(config)
    names.resolve(request, trace.notes)     # request.model == "openai/dall-e-3"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..aliases import ALIAS_ROUTING, Alias, ModelDefaults, qualified
from ..config import Config
from ..errors import InvalidRequest, UnsupportedEngine
from ..models import Fallbacks, LoadBalancer, LoadBalancerModel
from ..options import BODY_MODELS
from ..request import ImageRequest, Operation

# OpenAI's default model when a request names none (openai-python 1.99 ``resources/images.py``:
# "Defaults to dall-e-2 unless a parameter specific to gpt-image-1 is used").
OPENAI_DEFAULT = "dall-e-2"
OPENAI_GPT_IMAGE = "gpt-image-1"
GPT_IMAGE_ONLY = (
    "background",
    "moderation",
    "output_format",
    "output_compression",
    "input_fidelity",
)
GPT_IMAGE_VALUES = {
    "quality": {"low", "medium", "high"},
    "size": {"auto", "1536x1024", "1024x1536"},
}


def openai_default(request: ImageRequest) -> str:
    """The model OpenAI's API picks for ``request`` when the body names none."""
    if request.operation == "variations":
        return OPENAI_DEFAULT  # the only model variations take
    if any(getattr(request, name) is not None for name in GPT_IMAGE_ONLY):
        return OPENAI_GPT_IMAGE
    if any(getattr(request, name) in values for name, values in GPT_IMAGE_VALUES.items()):
        return OPENAI_GPT_IMAGE
    if len(request.images) > 1:  # dall-e-2 edits one image
        return OPENAI_GPT_IMAGE
    return OPENAI_DEFAULT


def openai_on(config: Config) -> bool:
    entry = config.providers.get("openai")
    return entry is not None and entry.enabled


def effective_default_provider(config: Config) -> str | None:
    """``default_provider``, else ``openai`` when an ``openai`` entry exists, else None."""
    if config.default_provider:
        return config.default_provider
    return "openai" if openai_on(config) else None


@dataclass(frozen=True, slots=True)
class Names:
    aliases: Mapping[str, Alias]
    default_provider: str | None
    defaults: ModelDefaults
    openai: bool

    @classmethod
    def from_config(cls, config: Config) -> Names:
        return cls(
            aliases=config.models,
            default_provider=effective_default_provider(config),
            defaults=config.defaults.model,
            openai=openai_on(config),
        )

    # --- one name --------------------------------------------------------------------------
    def qualify(self, name: str, param: str) -> str:
        """``name`` as ``provider/model``: a one-model alias's model, or the default provider's
        model; 400 naming ``param`` when neither applies."""
        if qualified(name):
            return name
        alias = self.aliases.get(name)
        if alias is not None:
            if alias.model is None:
                raise UnsupportedEngine(
                    f"{param}: alias {name!r} stands for several models; use it as the "
                    "request's model, or name one provider/model here",
                    param=param,
                )
            return alias.model
        if self.default_provider is None:
            raise UnsupportedEngine(
                f"{param}: {name[:80]!r} is neither a configured alias (models:) nor a "
                "provider/model name, and no default_provider is configured",
                param=param,
            )
        return f"{self.default_provider}/{name}"

    def default_for(self, operation: Operation, request: ImageRequest) -> tuple[str, str]:
        """(the model a request that names none gets, where that came from); 400 if none."""
        configured: str | None = getattr(self.defaults, operation)
        if configured is not None:
            return configured, f"defaults.model.{operation}"
        if self.openai:
            return f"openai/{openai_default(request)}", "OpenAI's default"
        raise InvalidRequest(  # as before defaults existed: the body lacks a field
            "model: field required (no defaults.model is configured for "
            f"images.{operation}, and no openai provider supplies OpenAI's default)",
            param="model",
        )

    # --- the request -----------------------------------------------------------------------
    def resolve(self, request: ImageRequest, notes: list[str]) -> bool:
        """Rewrite ``request`` (model, routing, pinned parameters) in place; notes say how.
        True when an alias rewrote it (its chain may be longer than what the body asked)."""
        asked = request.model
        opts = request.options
        if (  # the common case, nothing to rewrite: one provider/model, no routing names
            asked is not None
            and opts.load_balancer is None
            and not opts.fallbacks
            and asked not in self.aliases
            and qualified(asked)
        ):
            return False
        if request.options.load_balancer is not None and asked not in self.aliases:
            self._routing_names(request, notes)  # its models are the target; model is ignored
            return False
        if asked is None:
            name, source = self.default_for(request.operation, request)
            notes.append(f"model: none asked; {source} is {name}")
        else:
            name = asked
        alias = self.aliases.get(name)
        if alias is not None:
            self._alias(name, alias, request, notes)
        else:
            request.model = self.qualify(name, "model")
            if request.model != name:
                notes.append(f"model: {name!r} resolved to {request.model} (default_provider)")
        self._routing_names(request, notes)
        return alias is not None

    def _alias(self, name: str, alias: Alias, request: ImageRequest, notes: list[str]) -> None:
        opts = request.options
        targets = alias.targets()
        request.model = targets[0]
        defaults = alias.routing()
        if defaults is not None:  # the request's own orq fields win, field by field
            for field in ALIAS_ROUTING:
                if getattr(opts, field) is None and getattr(defaults, field) is not None:
                    setattr(opts, field, getattr(defaults, field))
        if alias.models is not None and alias.strategy == "load_balance":
            if request.options.load_balancer is None:
                lb = [LoadBalancerModel(model=m.model, weight=m.weight) for m in alias.models]
                opts.load_balancer = LoadBalancer(type="weight_based", models=lb)
            else:
                notes.append(f"model: the request's load_balancer replaces alias {name!r}'s list")
        elif len(targets) > 1:  # strategy fallback: the list in order, then the fallbacks
            chain = [Fallbacks(model=t) for t in targets[1:]]
            opts.fallbacks = chain + list(opts.fallbacks or [])
        shown = request.model if len(targets) == 1 else f"[{', '.join(targets)}]"
        notes.append(f"model: {name!r} resolved to {shown} (alias)")
        self._pin(name, alias.params, request, notes)

    @staticmethod
    def _pin(name: str, params: Mapping[str, Any], request: ImageRequest, notes: list[str]) -> None:
        """The alias's parameters replace the request's (noted when they differ)."""
        takes = BODY_MODELS[request.operation].model_fields
        for param, value in params.items():
            if param not in takes:
                notes.append(
                    f"params: alias {name!r} pins {param}, which "
                    f"images.{request.operation} does not take: ignored"
                )
                continue
            given = getattr(request, param)
            setattr(request, param, value)
            if given is not None and given != value:
                notes.append(
                    f"params: alias {name!r} pins {param}={value!r} "
                    f"(the request's {given!r} replaced)"
                )
            else:
                notes.append(f"params: alias {name!r} pins {param}={value!r}")

    def _routing_names(self, request: ImageRequest, notes: list[str]) -> None:
        """Fallback and load-balancer names as ``provider/model``."""
        opts = request.options
        if opts.fallbacks:
            fallbacks = []
            changed = False
            for i, fallback in enumerate(opts.fallbacks):
                model = self.qualify(fallback.model, f"fallbacks[{i}].model")
                if model != fallback.model:
                    notes.append(f"fallbacks[{i}]: {fallback.model!r} resolved to {model}")
                    fallback, changed = Fallbacks(model=model), True
                fallbacks.append(fallback)
            if changed:
                opts.fallbacks = fallbacks
        if opts.load_balancer is not None:
            entries = []
            changed = False
            for i, entry in enumerate(opts.load_balancer.models):
                model = self.qualify(entry.model, f"load_balancer.models[{i}].model")
                if model != entry.model:
                    notes.append(f"load_balancer[{i}]: {entry.model!r} resolved to {model}")
                    entry, changed = LoadBalancerModel(model=model, weight=entry.weight), True
                entries.append(entry)
            if changed:  # the body's objects stay when every name was already qualified
                opts.load_balancer = LoadBalancer(type="weight_based", models=entries)


def config_problem(config: Config) -> str | None:
    """Why the config's provider entries or model names cannot work, as one line naming the
    key; None when they can. Checked at load, so ``imagegate serve`` stops on a typo."""
    from ..providers.registry import ALWAYS_ON, entry_problem  # the adapters' table

    for name, entry in config.providers.items():
        problem = entry_problem(name, entry)
        if problem:
            return problem
    known = {*config.providers, *ALWAYS_ON}
    if config.default_provider is not None and config.default_provider not in known:
        return (
            f"default_provider: no provider entry named {config.default_provider[:60]!r} "
            f"(entries: {', '.join(sorted(known))})"
        )
    for alias_name, alias in config.models.items():
        for target in alias.targets():
            provider = target.partition("/")[0]
            if provider not in known:
                return (
                    f"models.{alias_name}: {target[:80]!r} names provider {provider[:60]!r}, "
                    f"which has no entry in providers"
                )
    names = Names.from_config(config)
    for operation in ("generations", "edits", "variations"):
        default: str | None = getattr(config.defaults.model, operation)
        if default is None or default in config.models or qualified(default):
            continue
        if names.default_provider is None:
            return (
                f"defaults.model.{operation}: {default[:80]!r} is neither an alias nor a "
                "provider/model name, and no default_provider is configured"
            )
    return None
