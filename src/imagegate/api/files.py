"""``GET /v2/files/{key}``: serve a stored image to whoever holds a valid signed URL.

No API key is needed: the HMAC signature and its expiry are the authorisation, so the URL
can be handed to a browser or another service. A bad, tampered or expired signature is a
403; an unknown key with a valid signature is a 404. Images never change under a key, so
responses carry an ETag and may be cached privately until the URL expires. A missing
``expires`` or ``sig`` is a 403 like any bad signature; a malformed one (not ASCII digits,
not 64 hex digits) is a 400 naming it, checked before anything converts it.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response

from ..blobs import BlobStoreError, content_type_of, is_blob_key
from ..errors import (
    Forbidden,
    GatewayError,
    InternalError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)
from ..gateway import Gateway
from .params import ascii_int, is_lower_hex
from .responses import error_response

log = logging.getLogger("imagegate.api")
KEY_HEX = 64  # a blob key is the SHA-256 of the bytes
SIG_HEX = 64  # HMAC-SHA256
EXPIRES_DIGITS = 12  # unix seconds up to year 33658


def _signature(request: Request) -> tuple[str | None, str | None]:
    """``expires`` and ``sig`` as sent when well-formed (None when absent); a 400 when not."""
    expires, sig = request.query_params.get("expires"), request.query_params.get("sig")
    if expires is not None and ascii_int(expires, EXPIRES_DIGITS) is None:
        raise InvalidRequest("expires: unix seconds in ASCII digits", param="expires")
    if sig is not None and not is_lower_hex(sig.lower() if sig.isascii() else sig, SIG_HEX):
        raise InvalidRequest(f"sig: {SIG_HEX} hex digits", param="sig")
    return expires, sig


async def get_file(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    key = request.path_params["key"]
    try:
        if not is_lower_hex(key, KEY_HEX) or not is_blob_key(key):
            raise NotFound("no such file", param="key")
        expires, sig = _signature(request)
        if not gateway.output.signer.verify(key, expires, sig):
            raise Forbidden("invalid or expired file signature")
        etag = f'"{key}"'
        max_age = max(0, int(expires or 0) - int(time.time()))
        headers = {
            "ETag": etag,
            "Cache-Control": f"private, max-age={max_age}, immutable",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        try:
            data = await gateway.output.store.get(key)
        except BlobStoreError:
            raise ServiceUnavailable("the image store is unavailable") from None
        if data is None:
            raise NotFound("no such file")
        return Response(data, media_type=content_type_of(data), headers=headers)
    except GatewayError as exc:
        return error_response(exc)
    except Exception:  # still orq's body, never a bare 500 page
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return error_response(InternalError("internal error; see the gateway log"))
