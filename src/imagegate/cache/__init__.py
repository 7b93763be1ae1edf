"""Exact-match response cache: canonical key, memory and Redis backends, coalescing.

``settings`` (the ``cache`` config section) is imported by config.py, so importing this
package must not import anything that imports the config back: the public names below are
loaded on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .settings import CacheConfig

if TYPE_CHECKING:
    from .backend import CacheBackend
    from .coalesce import InFlight
    from .key import cache_key, canonical
    from .layer import CacheLayer, make_backend
    from .memory import MemoryBackend
    from .redis import RedisBackend

_WHERE = {
    "CacheBackend": "backend",
    "CacheLayer": "layer",
    "InFlight": "coalesce",
    "MemoryBackend": "memory",
    "RedisBackend": "redis",
    "cache_key": "key",
    "canonical": "key",
    "make_backend": "layer",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "CacheBackend",
    "CacheConfig",
    "CacheLayer",
    "InFlight",
    "MemoryBackend",
    "RedisBackend",
    "cache_key",
    "canonical",
    "make_backend",
]
