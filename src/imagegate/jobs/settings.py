"""The ``jobs`` and ``webhooks`` sections of the config (docs/configuration.md).

Kept out of ``config.py`` (which imports them) so that file stays one screenful of sections;
this module imports nothing of imagegate's, so the config loads without the job machinery.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobsConfig(_Section):
    """The async job queue (docs/long-calls.md): every ``imagegate serve`` runs jobs."""

    workers: int = Field(8, ge=0, le=1024)  # jobs run at once by this process; 0: none
    lease_s: float = Field(60.0, ge=0.2, le=3600)  # a silent worker's job is rerun after this
    poll_interval_s: float = Field(1.0, gt=0, le=60)  # how often an idle worker looks for jobs
    max_running_per_workspace: int = Field(50, ge=1)
    max_queued_per_workspace: int = Field(10_000, ge=1)
    max_runs: int = Field(3, ge=1, le=20)  # runs of one job (lost leases included)
    # a finished job (its row, result references, webhook message and delivery log) is
    # deleted this long after it ended; 1 s to 1 year
    retention_s: float = Field(7 * 86_400.0, ge=1.0, le=366 * 86_400.0)


class WebhookSecret(_Section):
    """One signing secret: ``whsec_<base64>``, usable by ``workspaces`` (None: every one)."""

    secret: str
    workspaces: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"secret": value} if isinstance(value, str) else value

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: str) -> str:
        body = value.removeprefix("whsec_")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not value.startswith("whsec_") or len(raw) < 16:
            raise ValueError("expected whsec_ and the base64 of at least 16 random bytes")
        return value


class WebhooksConfig(_Section):
    """Signed job webhooks (Standard Webhooks); docs/long-calls.md."""

    secrets: dict[str, WebhookSecret] = Field(default_factory=dict)
    default_secret: str | None = None  # the secret of a webhook that names none
    timeout_s: float = Field(10.0, gt=0, le=120)  # one delivery attempt
    backoff_base_s: float = Field(5.0, gt=0)  # first retry after this, doubling each time
    backoff_max_s: float = Field(3600.0, gt=0)  # never longer between two attempts
    max_age_s: float = Field(86_400.0, gt=0)  # retried for this long, then given up
    max_url_chars: int = Field(2048, ge=16, le=8192)
    max_response_bytes: int = Field(64 * 1024, ge=0)  # read of the receiver's answer
    workers: int = Field(4, ge=0, le=256)  # deliveries sent at once by this process

    @field_validator("secrets")
    @classmethod
    def _ids(cls, value: dict[str, WebhookSecret]) -> dict[str, WebhookSecret]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
                raise ValueError(f"secret id {name[:40]!r}: letters, digits, '_', '.', '-'")
        return value

    @model_validator(mode="after")
    def _default_known(self) -> WebhooksConfig:
        if self.default_secret is not None and self.default_secret not in self.secrets:
            raise ValueError(f"default_secret {self.default_secret[:40]!r} is not in secrets")
        return self
