"""The ``lifecycle`` section of the config (docs/deployment.md, docs/configuration.md): the
SIGTERM drain and the readiness probe.

Kept beside the feature so config.py only names it; every value is bounded.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Part = Literal["store", "redis", "blobs"]
PARTS: tuple[Part, ...] = ("store", "redis", "blobs")


class LifecycleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # SIGTERM: requests in flight get this long to finish, then are cancelled (their traces
    # say 503 server_shutting_down); size it against the load balancer's drain time
    shutdown_grace_s: int = Field(30, ge=0, le=3600)  # whole seconds, as Kubernetes counts
    # ``GET /health/ready``: each check may take this long (slower counts as down) ...
    ready_timeout_s: float = Field(2.0, gt=0, le=60)
    # ... and probes within this share one answer (a flood of probes is one check)
    ready_cache_s: float = Field(1.0, ge=0, le=60)
    # parts whose failure answers 503; the others are reported but never fail readiness
    ready_required: list[Part] = Field(default_factory=lambda: list(PARTS))
