"""One exception type per orq error code; each knows its HTTP status and renders orq's body.

Every error the API returns is ``{"error": {"message", "type", "param", "code"}}`` with a
string or null ``code`` (the orq SDK raises ``ResponseValidationError`` on anything else).
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway answers with."""

    status: int = 500
    code: str | None = "internal_error"
    type: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        failures: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.failures = failures
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        if self.failures is not None:
            err["failures"] = self.failures
        return {"error": err}


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid_request_body"
    type = "invalid_request_error"


class UnsupportedFileType(InvalidRequest):
    code = "unsupported_file_mimetype"


class UnsupportedEngine(InvalidRequest):
    code = "unsupported_engine"


class InvalidImage(InvalidRequest):
    """An upload that declares more pixels than ``limits.max_image_pixels``."""

    code = "invalid_image"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"
    type = "invalid_request_error"


class RequestTimeout(GatewayError):
    """The request body did not arrive in time (``limits.body_timeout_s`` / idle timeout)."""

    status = 408
    code = "request_timeout"
    type = "timeout_error"


class AuthenticationRequired(GatewayError):
    status = 401
    code = "authentication_required"
    type = "authentication_error"


class InvalidApiKey(AuthenticationRequired):
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    type = "invalid_request_error"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method_not_allowed"
    type = "invalid_request_error"


class ProviderError(GatewayError):
    """An upstream answered with an error; keeps the upstream status and message."""

    status = 502
    code = "provider_error"
    type = "api_error"


class ProviderTimeout(GatewayError):
    status = 504
    code = "provider_timeout"
    type = "timeout_error"


class RateLimited(GatewayError):
    status = 429
    code = "rate_limit_exceeded"
    type = "rate_limit_error"


class ServiceUnavailable(GatewayError):
    status = 503
    code = "service_unavailable"
    type = "api_error"


class ProviderNotConfigured(ServiceUnavailable):
    """The operator's config lacks what a provider needs (a key, an endpoint)."""

    code = "provider_not_configured"


class InternalError(GatewayError):
    status = 500
    code = "internal_error"
    type = "api_error"


# --- upstream failures raised by provider adapters (never answered directly) -----------------


class UpstreamFailure(Exception):
    """Raised by a provider adapter; the routing executor decides what happens next."""

    kind: str = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after_s: float | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s
        self.param = param  # the request field at fault (ours, or the provider's own name)


class UpstreamHTTPError(UpstreamFailure):
    """The provider answered with an error status."""

    kind = "http"
    status: int


class UpstreamTimeout(UpstreamFailure):
    """The attempt ran past its per-attempt timeout."""

    kind = "timeout"


class UpstreamConnectionError(UpstreamFailure):
    """Refused, reset, or a broken/truncated response."""

    kind = "connection"


# A provider's error status → (orq code, type). Every 4xx code says the *provider* refused, so
# a caller can tell it from the gateway's own validation (``invalid_request_body``).
STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("provider_invalid_request", "invalid_request_error"),
    401: ("provider_credential_invalid", "authentication_error"),
    402: ("quota_exceeded", "invalid_request_error"),
    403: ("insufficient_scope", "permission_error"),
    404: ("provider_not_found", "invalid_request_error"),
    408: ("provider_timeout", "timeout_error"),
    413: ("provider_invalid_request", "invalid_request_error"),
    422: ("provider_invalid_request", "invalid_request_error"),
    429: ("rate_limit_exceeded", "rate_limit_error"),
    500: ("provider_error", "api_error"),
    502: ("provider_error", "api_error"),
    503: ("provider_overloaded", "api_error"),
    504: ("provider_timeout", "timeout_error"),
}
OWN_INVALID = ("invalid_request_body", "invalid_request_error")


def provider_status(status: int) -> tuple[str, str]:
    """(code, type) for an error status a provider answered (any other 4xx is still its refusal)."""
    found = STATUS_CODES.get(status)
    if found is not None:
        return found
    if 400 <= status < 500:
        return "provider_invalid_request", "invalid_request_error"
    return "provider_error", "api_error"


def from_upstream(failure: UpstreamFailure) -> GatewayError:
    """Turn an upstream failure into the error we answer with (status and message kept).

    A provider's answer always carries a code (``http.map_status`` sets one); a 400 without a
    code was raised by an adapter itself, before anything was sent: the gateway's own
    validation, answered as ``invalid_request_body`` like the rest of it.
    """
    if isinstance(failure, UpstreamTimeout):
        return ProviderTimeout(failure.message)
    if isinstance(failure, UpstreamConnectionError) or failure.status is None:
        return ProviderError(failure.message)
    if failure.code is None and failure.status == 400:
        code, etype = OWN_INVALID
    else:
        code, etype = provider_status(failure.status)
    err = GatewayError(
        failure.message, status=failure.status, code=failure.code or code, param=failure.param
    )
    err.type = etype
    return err
