"""The ``telemetry`` section of the config: OpenTelemetry export (docs/deployment.md).

Kept beside the feature so config.py only names it. Off unless ``otlp_endpoint`` is set, and
then the only cost on a request is building its spans (``telemetry/otel.py``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TelemetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # OTLP/HTTP collector, e.g. http://otel-collector:4318: spans go to <endpoint>/v1/traces
    # (a URL already ending in /v1/traces is used as it is). None: no OpenTelemetry at all.
    otlp_endpoint: str | None = Field(None, max_length=2048)
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. an API key of the backend
    service_name: str = Field("imagegate", min_length=1, max_length=128)
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0)  # of new traces; a caller's sampled flag wins
    export_delay_s: float = Field(5.0, gt=0, le=300)  # spans are batched this long at most
    export_timeout_s: float = Field(10.0, gt=0, le=300)

    @field_validator("otlp_endpoint")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL (OTLP over HTTP)")
        return value or None

    def traces_url(self) -> str | None:
        """Where spans are POSTed (the OTLP/HTTP convention for a base endpoint)."""
        if self.otlp_endpoint is None:
            return None
        base = self.otlp_endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else base + "/v1/traces"
