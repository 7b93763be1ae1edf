"""Reading JSON request bodies with a size cap (shared by every JSON endpoint)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from ..errors import InvalidRequest, PayloadTooLarge

MAX_JSON_BYTES = 8 * 1024 * 1024


async def read_json(request: Request) -> Any:
    """The JSON body, read with a cap: JSON endpoints carry no files, so a huge body is abuse."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise PayloadTooLarge(f"JSON body exceeds {MAX_JSON_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise InvalidRequest("empty request body; send a JSON object", param="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON body: {exc}", param="body") from None
