"""``GET /v2/files/{key}``: serve a stored image to whoever holds a valid signed URL.

No API key is needed: the HMAC signature and its expiry are the authorisation, so the URL
can be handed to a browser or another service. A bad, tampered or expired signature is a
403; an unknown key with a valid signature is a 404. Images never change under a key, so
responses carry an ETag and may be cached privately until the URL expires.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from ..blobs import BlobStoreError, content_type_of, is_blob_key
from ..errors import Forbidden, GatewayError, NotFound, ServiceUnavailable
from ..gateway import Gateway
from .responses import error_response


async def get_file(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    key = request.path_params["key"]
    try:
        if not is_blob_key(key):
            raise NotFound("no such file")
        expires = request.query_params.get("expires")
        if not gateway.output.signer.verify(key, expires, request.query_params.get("sig")):
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
