"""A shim: moved to ``core/http.py``. The old import path stays for the adapters not yet on the
spec runner (fal, replicate, bfl, bedrock, google, vertex); removed in phase 2."""

from .core.http import (
    READ_BUFSIZE,
    HTTPProvider,
    error_details,
    error_message,
    map_status,
    parse_retry_after,
)

__all__ = [
    "READ_BUFSIZE",
    "HTTPProvider",
    "error_details",
    "error_message",
    "map_status",
    "parse_retry_after",
]
