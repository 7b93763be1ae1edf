"""Model prefix → configured provider adapter.

``openai/dall-e-3`` resolves to the provider entry named ``openai`` and model ``dall-e-3``.
An entry's ``type`` picks the adapter, so ``mylab: {type: openai-compatible, base_url: ...}``
serves ``mylab/<model>``. Adapters are registered by type name in ``ADAPTERS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..config import Config, ProviderConfig
from .base import Provider
from .http import HTTPProvider

AdapterFactory = Callable[[str, ProviderConfig], Provider]

# type name -> "module:Class" (imported lazily so an unused adapter costs nothing)
ADAPTERS: dict[str, str] = {
    "openai": "imagegate.providers.openai:OpenAIProvider",
    "openai-compatible": "imagegate.providers.openai:OpenAIProvider",
    "placeholder": "imagegate.providers.placeholder:PlaceholderProvider",
    "azure": "imagegate.providers.azure:AzureProvider",
    "google": "imagegate.providers.google:GoogleProvider",
    "vertex": "imagegate.providers.vertex:VertexProvider",
    "together": "imagegate.providers.together:TogetherProvider",
    "xai": "imagegate.providers.xai:XAIProvider",
    "recraft": "imagegate.providers.recraft:RecraftProvider",
    "stability": "imagegate.providers.stability:StabilityProvider",
    "fal": "imagegate.providers.fal:FalProvider",
    "bedrock": "imagegate.providers.bedrock:BedrockProvider",
    "replicate": "imagegate.providers.replicate:ReplicateProvider",
    "bfl": "imagegate.providers.bfl:BFLProvider",
}
# providers that work without any key or configuration
ALWAYS_ON = ("placeholder",)
# providers that need a key before they count as configured
NEEDS_KEY = {"openai", "azure", "google", "together", "xai", "recraft",
             "stability", "fal", "replicate", "bfl"}  # fmt: skip


def split_model(model: str) -> tuple[str, str]:
    """``provider/model`` → (provider, model); a bare name has no provider."""
    provider, sep, name = model.partition("/")
    if not sep or not provider or not name:
        return "", model
    return provider, name


def load_adapter(type_name: str) -> AdapterFactory:
    target = ADAPTERS[type_name]
    module_name, _, attr = target.partition(":")
    factory: AdapterFactory = getattr(importlib.import_module(module_name), attr)
    return factory


class Registry:
    """Holds one adapter instance per configured provider entry."""

    def __init__(self, config: Config) -> None:
        self._providers: dict[str, Provider] = {}
        self.unavailable: dict[str, str] = {}
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
            if type_name in NEEDS_KEY and not entry.api_key and not entry.base_url:
                self.unavailable[name] = "no api_key configured"
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
