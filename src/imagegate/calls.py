"""The values a call into the pipeline takes and gives: ``CallContext`` (per-call facts that
do not come from the body) and ``ImagesResponse`` (the answer and its headers' facts).

They live apart from ``gateway.py`` (which names them again) so the pipeline module stays
about the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .request import ImageRequest
from .telemetry.trace import TraceRecord, new_trace_id
from .workspaces import OPERATOR, Principal

__all__ = ["CallContext", "ImagesResponse", "complete_usage"]


@dataclass(slots=True)
class CallContext:
    """Per-call facts that do not come from the body."""

    trace_id: str = field(default_factory=new_trace_id)
    api_key_id: str | None = None
    header_identity_id: str | None = None
    base_url: str = ""
    principal: Principal = OPERATOR  # who calls: workspace, role, key
    trace: TraceRecord | None = None  # set by the gateway: read by the HTTP access log
    notes: list[str] = field(default_factory=list)  # for the trace (a job's run, a rerun)

    @property
    def workspace_id(self) -> str:
        return self.principal.workspace_id

    def identity_of(self, request: ImageRequest) -> str | None:
        """The identity a request is for: the body's, else the ``x-orq-identity-id`` header."""
        identity = request.options.identity
        return identity.id if identity is not None else self.header_identity_id


@dataclass(slots=True)
class ImagesResponse:
    """The answer: the JSON body plus the facts the HTTP edge turns into headers."""

    body: dict[str, Any]
    trace_id: str
    model: str | None = None
    attempts: int = 0
    cache: str | None = None  # "HIT" | "MISS" | None
    rate_headers: dict[str, str] = field(default_factory=dict)  # x-ratelimit-*

    @property
    def data(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.body["data"]
        return items

    def headers(self) -> dict[str, str]:
        return orq_headers(self.trace_id, self.model, self.attempts, self.cache, self.rate_headers)


def orq_headers(
    trace_id: str, model: str | None, attempts: int, cache: str | None, rate: dict[str, str]
) -> dict[str, str]:
    """The answer's ``x-orq-*`` and ``x-ratelimit-*`` headers, JSON or event stream alike."""
    out = {**rate, "x-orq-trace-id": trace_id}
    if model:
        out["x-orq-model"] = model
        out["x-orq-attempts"] = str(attempts)
    if cache:
        out["x-orq-cache"] = cache
    return out


def complete_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """``usage`` only when complete: the orq SDK rejects a partial one."""
    if not usage:
        return None
    details = usage.get("input_tokens_details")
    required = ("input_tokens", "output_tokens", "total_tokens")
    if not isinstance(details, dict) or any(usage.get(k) is None for k in required):
        return None
    if "text_tokens" not in details or "image_tokens" not in details:
        return None
    return usage
