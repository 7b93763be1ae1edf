"""The ``cache`` section of the config (docs/configuration.md, docs/images-and-cache.md).

Kept beside the feature so config.py only names it. This module imports nothing of the
gateway: config.py imports it, and ``imagegate.cache`` loads its other modules lazily for the
same reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    max_bytes: int = Field(256 * 1024 * 1024, ge=0)
    prefix: str = "imagegate:cache:"
    timeout_s: float = Field(0.25, gt=0)  # Redis socket timeout: a dead cache never blocks
    retry_after_s: float = Field(1.0, ge=0)  # after a Redis failure, serve uncached this long
    # Coalescing across replicas (backend redis only, cache/flights.py): identical requests in
    # flight on different replicas make one upstream call. The leader holds a lock for
    # ``flight_lease_s``, renewed every third of it while its call runs, so a replica that dies
    # mid-call frees the key after at most this long; a waiting replica looks again every
    # ``flight_poll_s`` even when no notification reaches it.
    shared_flights: bool = True
    flight_lease_s: float = Field(10.0, ge=1.0, le=600.0)
    flight_poll_s: float = Field(0.5, ge=0.01, le=10.0)
