"""The three image endpoints: parse, authenticate, run the gateway, answer."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..config import LimitsConfig
from ..errors import GatewayError, InternalError, InvalidRequest
from ..gateway import CallContext, Gateway
from ..options import build_request
from ..request import ImageRequest, Operation
from ..telemetry.trace import new_trace_id
from .accesslog import CALL_STATE
from .auth import caller
from .body import read_json
from .disconnect import unless_disconnected
from .idempotency import idempotency_key, idempotent
from .multipart import framed_cap, parse_multipart
from .responses import JSONResponse, error_response
from .spool import process_budget
from .sse import EventStreamResponse
from .stream import body_chunks, declared_length

log = logging.getLogger("imagegate.api")
CLIENT_CLOSED = 499


async def read_request(request: Request, operation: Operation, gateway: Gateway) -> ImageRequest:
    """The body as an ``ImageRequest``, every upload within the limits (sizes, pixels, time)."""
    raw_type = request.headers.get("content-type", "")
    content_type = raw_type.lower()  # for the checks; the boundary keeps its case
    limits = gateway.config.limits
    if operation == "generations":
        if "multipart/" in content_type:
            raise InvalidRequest("generations take a JSON body", param="body")
        return build_request("generations", await read_json(request, limits), limits=limits)
    if content_type.startswith("application/json"):
        raise InvalidRequest(
            f"images/{operation} takes multipart/form-data with an image file", param="image"
        )
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest("expected a multipart/form-data body", param="body")
    declared_length(request, framed_cap(limits), "multipart body")
    form = await parse_multipart(
        raw_type,
        body_chunks(request, limits),
        gateway.config.uploads,
        limits,
        process_budget(limits.max_spooled_bytes),
    )
    try:
        return build_request(operation, form.fields, form.images, form.mask, limits)
    except BaseException:
        for upload in form.images:
            upload.discard()
        if form.mask is not None:
            form.mask.discard()
        raise


def base_url(request: Request, public_url: str | None) -> str:
    if public_url:
        return public_url.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def header_identity(request: Request, limits: LimitsConfig) -> str | None:
    """``x-orq-identity-id`` (or ``x-orq-contact-id``), bounded like the body's identity id."""
    for name in ("x-orq-identity-id", "x-orq-contact-id"):
        value = request.headers.get(name)
        if value:
            if len(value) > limits.max_name_chars:
                raise InvalidRequest(
                    f"{name}: at most {limits.max_name_chars} characters", param=name
                )
            return value
    return None


def make_endpoint(operation: Operation) -> Any:
    async def endpoint(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        trace_id = new_trace_id()
        image_request: ImageRequest | None = None
        ctx: CallContext | None = None
        try:
            principal = await caller(request)
            ctx = CallContext(
                trace_id=trace_id,
                api_key_id=principal.key_id,
                header_identity_id=header_identity(request, gateway.config.limits),
                base_url=base_url(request, gateway.config.public_url),
                principal=principal,
            )
            setattr(request.state, CALL_STATE, ctx)  # for the access log, after the response
            key = idempotency_key(request)  # checked before the body: a bad key costs no upload
            image_request = await read_request(request, operation, gateway)
            if key is not None:  # run once per key, then replayed (api/idempotency.py)
                answer = await unless_disconnected(
                    idempotent(request.app.state.idempotency, key, image_request, ctx, gateway),
                    request.receive,
                    trace_id,
                )
                return Response(status_code=CLIENT_CLOSED) if answer is None else answer
            if image_request.stream:  # events (api/sse.py); failures before the first: JSON
                streamed = await unless_disconnected(
                    gateway.stream(image_request, ctx), request.receive, trace_id
                )
                if streamed is None:
                    return Response(status_code=CLIENT_CLOSED)
                return EventStreamResponse(streamed)
            result = await unless_disconnected(
                gateway.handle(image_request, ctx), request.receive, trace_id
            )
            if result is None:
                return Response(status_code=CLIENT_CLOSED)
            return JSONResponse(result.body, headers=result.headers())
        except GatewayError as exc:
            if image_request is None and ctx is not None:  # authenticated, refused body
                gateway.record_rejected(operation, ctx, exc)
            return error_response(exc, trace_id)
        except ClientDisconnect:  # gone while sending the body; its temp files are removed
            log.info("client disconnected while sending the body of trace %s", trace_id)
            return Response(status_code=CLIENT_CLOSED)
        except Exception:
            log.exception("unhandled error in trace %s", trace_id)
            return error_response(InternalError("internal error; see the gateway log"), trace_id)
        finally:
            if image_request is not None:
                image_request.discard_files()

    endpoint.__name__ = f"images_{operation}"
    return endpoint
