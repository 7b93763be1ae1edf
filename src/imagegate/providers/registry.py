"""Model prefix → configured provider adapter.

``openai/dall-e-3`` resolves to the provider entry named ``openai`` and model ``dall-e-3``.
An entry's ``type`` picks the adapter, so ``mylab: {type: openai-compatible, base_url: ...}``
serves ``mylab/<model>``. Adapters are registered by type name in ``ADAPTERS``: a
``ProviderSpec`` (served by the one runner, ``core/runner.py``) or, for the adapters not yet
declared as specs, a provider class.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable
from typing import Any

from ..config import Config, ProviderConfig
from .base import Provider
from .core.http import HTTPProvider
from .core.runner import SpecProvider
from .core.spec import Keys, ProviderSpec

AdapterFactory = Callable[[str, ProviderConfig], Provider]
AdapterKeys = Keys
log = logging.getLogger(__name__)

# type name -> "module:SPEC" of a declared provider (imported when the registry is)
SPECS: dict[str, str] = {
    "openai": "imagegate.providers.openai.openai:SPEC",
    "openai-compatible": "imagegate.providers.openai.openai:COMPATIBLE",
    "azure": "imagegate.providers.openai.azure:SPEC",
    "xai": "imagegate.providers.openai.xai:SPEC",
    "together": "imagegate.providers.openai.together:SPEC",
    "recraft": "imagegate.providers.recraft:SPEC",
    "stability": "imagegate.providers.stability:SPEC",
    "google": "imagegate.providers.google.gemini_api:SPEC",
    "vertex": "imagegate.providers.google.vertex:SPEC",
    "bedrock": "imagegate.providers.bedrock.invoke:SPEC",
    "fal": "imagegate.providers.queue.fal:SPEC",
    "replicate": "imagegate.providers.queue.replicate:SPEC",
    "bfl": "imagegate.providers.queue.bfl:SPEC",
}
# type name -> "module:Class" of a hand-written adapter (imported lazily, when configured)
CLASSES: dict[str, str] = {
    "placeholder": "imagegate.providers.placeholder:PlaceholderProvider",
}
# type name -> where its adapter is ("module:attr"), or a spec registered at run time
ADAPTERS: dict[str, str | ProviderSpec[Any]] = {**SPECS, **CLASSES}
# providers that work without any key or configuration
ALWAYS_ON = ("placeholder",)


def _target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def spec_keys(spec: ProviderSpec[Any]) -> Keys:
    """The keys a declared provider reads: its own, plus those the runner reads for it."""
    extra = {spec.batch_option} if spec.batch_option else set()
    if spec.polling is not None:
        extra.add("poll_interval_s")
    return spec.keys._replace(optional=spec.keys.optional | extra)


# type name -> the keys its adapter reads: derived from the specs; written by hand for the
# adapter classes (grep ``option(`` in their modules to keep in step)
PROVIDER_KEYS: dict[str, AdapterKeys] = {
    **{type_name: spec_keys(_target(target)) for type_name, target in SPECS.items()},
    "placeholder": AdapterKeys(),
}
# keys every entry accepts (ProviderConfig's declared fields)
COMMON_KEYS = frozenset(ProviderConfig.model_fields)
# env variables that fill a key, named in messages so the fix is obvious
ENV_HINTS = {("azure", "base_url"): "AZURE_OPENAI_ENDPOINT"}


def entry_problem(name: str, entry: ProviderConfig) -> str | None:
    """Why a provider entry cannot work as written (unknown type or key, a missing required
    key), as one line naming the key; None when it is fine. Checked at config load so a typo
    stops ``imagegate serve`` instead of failing every request."""
    type_name = entry.type or name
    keys = PROVIDER_KEYS.get(type_name)
    if keys is None:
        known = ", ".join(sorted(PROVIDER_KEYS))
        if entry.type is None:
            return f"providers.{name}: no adapter is named {name!r}; add type: (one of {known})"
        return f"providers.{name}.type: unknown provider type {type_name!r} (known: {known})"
    accepted = COMMON_KEYS | keys.optional
    for key in entry.model_extra or {}:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = (
                f"did you mean {close[0]}?" if close else f"accepted: {', '.join(sorted(accepted))}"
            )
            return f"providers.{name}.{key}: unknown key for type {type_name} ({hint})"
    if not entry.enabled:
        return None
    for group in keys.required:
        if not any(_is_set(entry, key) for key in group):
            if len(group) == 1:
                env = ENV_HINTS.get((name, group[0]))
                also = f" (or env {env})" if env else ""
                return f"providers.{name}.{group[0]}: required for type {type_name}{also}"
            return f"providers.{name}: type {type_name} needs one of {', '.join(group)}"
    problem = keys.check(entry) if keys.check is not None else None
    return f"providers.{name}: type {type_name} {problem}" if problem else None


def missing_credential(name: str, entry: ProviderConfig) -> str | None:
    """The credential keys an entry still lacks to be served (None: it has one or needs none)."""
    keys = PROVIDER_KEYS.get(entry.type or name)
    if keys is None or not keys.credentials:
        return None
    if any(_is_set(entry, key) for key in keys.credentials):
        return None
    return " or ".join(keys.credentials)


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """Log ``message`` once per process: startup builds more than one Registry (the startup
    summary, then the app), and one line per problem is what an operator should see."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning("%s", message)


def _is_set(entry: ProviderConfig, key: str) -> bool:
    value = getattr(entry, key) if key in COMMON_KEYS else entry.option(key)
    return value is not None and value != ""


def split_model(model: str) -> tuple[str, str]:
    """``provider/model`` → (provider, model); a bare name has no provider."""
    provider, sep, name = model.partition("/")
    if not sep or not provider or not name:
        return "", model
    return provider, name


def register(spec: ProviderSpec[Any]) -> None:
    """Serve ``spec.type`` from now on (a provider declared outside this package); entries
    of that type are checked against its keys like any other."""
    ADAPTERS[spec.type] = spec
    PROVIDER_KEYS[spec.type] = spec_keys(spec)


def load_adapter(type_name: str) -> AdapterFactory:
    target = ADAPTERS[type_name]
    found = _target(target) if isinstance(target, str) else target
    if isinstance(found, ProviderSpec):
        spec: ProviderSpec[Any] = found
        return lambda name, entry: SpecProvider(spec, name, entry)
    factory: AdapterFactory = found
    return factory


class Registry:
    """Holds one adapter instance per configured provider entry."""

    def __init__(self, config: Config) -> None:
        self._providers: dict[str, Provider] = {}
        self.unavailable: dict[str, str] = {}
        # Entries the operator wrote in the config that lack a credential: a request for them
        # is the operator's problem (503 provider_not_configured), not the caller's.
        self.unconfigured: set[str] = set()
        entries = dict(config.providers)
        for name in ALWAYS_ON:
            entries.setdefault(name, ProviderConfig())
        for name, entry in entries.items():
            type_name = entry.type or name
            if not entry.enabled:
                self.unavailable[name] = "disabled in config"
                continue
            if type_name not in ADAPTERS:
                self.unavailable[name] = f"unknown provider type {type_name!r}"
                continue
            missing = missing_credential(name, entry)
            if missing is not None:
                self.unavailable[name] = f"no {missing} configured"
                if name in config.providers:  # written in the config: say so at startup
                    self.unconfigured.add(name)
                    _warn_once(
                        f"providers.{name}: no {missing} configured: its models are not served"
                    )
                continue
            provider = load_adapter(type_name)(name, entry)
            if isinstance(provider, HTTPProvider):  # adapters get ProviderConfig only
                provider.max_response_bytes = config.limits.max_provider_response_bytes
            self._providers[name] = provider

    def add(self, name: str, provider: Provider) -> None:
        self._providers[name] = provider

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def names(self) -> list[str]:
        return sorted(self._providers)

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.close()
