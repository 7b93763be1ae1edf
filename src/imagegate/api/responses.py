"""JSON responses with orjson, and orq's error envelope."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from ..errors import GatewayError


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: GatewayError, trace_id: str | None = None) -> Response:
    headers = dict(error.headers)
    if trace_id:
        headers["x-orq-trace-id"] = trace_id
    return JSONResponse(error.body(), status_code=error.status, headers=headers)
