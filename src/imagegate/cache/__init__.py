"""Exact-match response cache: canonical key, memory and Redis backends, coalescing."""

from __future__ import annotations

from .backend import CacheBackend
from .coalesce import InFlight
from .key import cache_key, canonical
from .layer import CacheLayer, make_backend
from .memory import MemoryBackend
from .redis import RedisBackend

__all__ = [
    "CacheBackend",
    "CacheLayer",
    "InFlight",
    "MemoryBackend",
    "RedisBackend",
    "cache_key",
    "canonical",
    "make_backend",
]
