"""The ``idempotency`` section of the config (docs/configuration.md).

Kept beside the feature so config.py only names it; every value is bounded, so a typo cannot
make records live for a year or leases last for ever.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class IdempotencyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # "auto": Redis when the config names one (``redis_url``), else the control-plane store;
    # "store": the store even then
    backend: Literal["auto", "store"] = "auto"
    ttl_s: int = Field(24 * 3600, ge=60, le=7 * 24 * 3600)  # how long a kept answer replays
    # the in-flight marker's lease, renewed every third of it while the call runs: a replica
    # that dies mid-call leaves a marker that lapses after this, and a retry runs again
    lease_s: float = Field(30.0, ge=1.0, le=600.0)
    max_record_bytes: int = Field(64 * 1024, ge=1024, le=1024 * 1024)  # larger: not kept
    prefix: str = Field("imagegate:idem:", min_length=1, max_length=64)  # Redis key prefix
