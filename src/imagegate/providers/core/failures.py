"""Provider-specific failures mapped onto the statuses and orq codes the executor judges.

Why: providers signal the same things in different ways (Stability answers a moderated
prompt with 403, BFL and Replicate report it in a finished job's status, fal as a 422
detail type). Adapters translate them here so the gateway answers them alike:

- content policy → 400 ``content_policy_violation`` (``policy.py``: answered at once, never a
  fallback);
- a job that failed or was cancelled upstream → 502 ``provider_error`` (fallback-eligible);
- a response we cannot use (no image in it) → a broken-response connection failure;
- a request field an adapter itself refuses, before sending anything → 400
  ``invalid_request_body`` naming the field (the gateway's validation, not the provider's);
- an entry missing its credentials or endpoint → 503 ``provider_not_configured`` (the
  operator's to fix: never a 401, which would read as the caller's key being wrong).
"""

from __future__ import annotations

from ...errors import UpstreamConnectionError, UpstreamHTTPError


def job_failed(provider: str, message: str) -> UpstreamHTTPError:
    return UpstreamHTTPError(f"{provider}: {message}", status=502, code="provider_error")


def no_image(provider: str, detail: str = "response holds no image") -> UpstreamConnectionError:
    return UpstreamConnectionError(f"{provider}: {detail}")


def invalid_input(message: str, param: str) -> UpstreamHTTPError:
    """Our own refusal of ``param`` inside an adapter: nothing reached the provider."""
    return UpstreamHTTPError(message, status=400, code="invalid_request_body", param=param)


def not_configured(provider: str, missing: str) -> UpstreamHTTPError:
    """503: the entry for ``provider`` lacks ``missing`` (falls back like any 503)."""
    return UpstreamHTTPError(
        f"provider {provider!r} is not configured: {missing}",
        status=503,
        code="provider_not_configured",
    )
