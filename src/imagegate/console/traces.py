"""Traces: the filtered list (thumbnails inline), one trace in full, and its images.

Images are addressed by trace and position (``/traces/{id}/images/{i}``), never by blob key:
the trace is read in the caller's workspace first, so another workspace's image is a 404 like
a missing one, even when both workspaces hold the same bytes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.responses import Response

from .. import imaging
from ..api.images import base_url
from ..api.params import (
    MAX_ID_CHARS,
    ascii_int,
    clean_text,
    query_choice,
    query_text,
    query_time,
)
from ..blobs import BlobStoreError
from ..errors import GatewayError, InvalidRequest, ServiceUnavailable
from ..imageinfo import probe
from ..request import MIME_BY_KIND
from ..store import TraceRecord
from ..store.browse import TraceFilter
from .present import (
    parameters,
    pretty,
    provider_of,
    replay_curl,
    routing_options,
    status_class,
    timeline,
)
from .thumbs import MIME as THUMB_MIME
from .thumbs import NotAnImage
from .web import PREFIX, Ctx, not_found

PAGE = 50
FILTERS = (
    "status",
    "model",
    "provider",
    "identity",
    "thread",
    "name",
    "prompt",
    "since",
    "until",
    "cache",
    "q",
)
MAX_IMAGES = 16
IMAGE_CACHE = "private, max-age=31536000, immutable"


def trace_filter(q: QueryParams) -> TraceFilter:
    f = TraceFilter(limit=PAGE)
    f.model, f.provider = query_text(q, "model"), query_text(q, "provider")
    f.identity_id, f.thread_id = query_text(q, "identity"), query_text(q, "thread")
    f.name, f.prompt_id = query_text(q, "name"), query_text(q, "prompt")
    f.text = query_text(q, "q")
    f.cursor = query_text(q, "cursor", MAX_ID_CHARS)
    status = q.get("status")
    if status:
        code = ascii_int(status, 3)
        if status in ("success", "error"):
            f.succeeded = status == "success"
        elif code is not None and 100 <= code <= 599:
            f.status = code
        else:
            raise InvalidRequest("status: 'success', 'error' or an HTTP status", param="status")
    f.cache = query_choice(q, "cache", ("hit", "miss"), fold_case=True)
    f.since, f.until = query_time(q, "since"), query_time(q, "until")
    return f


def row(t: TraceRecord) -> dict[str, Any]:
    """What one line of the list shows."""
    return {
        "t": t,
        "images": range(min(len(t.output_blobs), 4)),
        "more": max(0, len(t.output_blobs) - 4),
        "alt": (t.prompt or t.name)[:300],
        "provider": provider_of(t.served_model),
        "fell_back": bool(
            t.served_model and t.requested_model and t.served_model != t.requested_model
        ),
        "state": status_class(t.status),
    }


async def list_traces(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    f = trace_filter(q)
    await ctx.settle()
    page = await ctx.console.browse.browse_traces(ctx.workspace, f)
    kept = {k: q[k] for k in FILTERS if q.get(k)}
    older = f"?{urlencode({**kept, 'cursor': page.next_cursor})}" if page.next_cursor else None
    return ctx.render(
        "traces.html",
        title="Traces",
        rows=[row(t) for t in page.items],
        filters=kept,
        older=older,
        newest=f"?{urlencode(kept)}" if f.cursor else None,
    )


def _trace_id(ctx: Ctx) -> str:
    raw = ctx.request.path_params["trace_id"]
    if not raw or not clean_text(raw, MAX_ID_CHARS):
        raise not_found("trace")
    return str(raw)


async def _trace(ctx: Ctx) -> TraceRecord:
    trace_id = _trace_id(ctx)
    await ctx.settle()
    trace = await ctx.console.store.get_trace(ctx.workspace, trace_id)
    if trace is None:
        raise not_found("trace")
    return trace


async def get_trace(ctx: Ctx) -> Response:
    t = await _trace(ctx)
    bars, span_ms = timeline(t.attempts)
    base = base_url(ctx.request, ctx.gateway.config.public_url)
    return ctx.render(
        "trace.html",
        title=f"Trace {t.id}",
        t=t,
        r=row(t),
        bars=bars,
        span_ms=span_ms,
        rows=len(t.attempts),
        params=pretty(parameters(t)),
        orq=pretty(routing_options(t)),
        metadata=pretty(t.metadata) if t.metadata else None,
        usage=pretty(t.usage) if t.usage else None,
        curl=replay_curl(t, base),
        images=range(min(len(t.output_blobs), MAX_IMAGES)),
    )


def _index(ctx: Ctx) -> int:
    index = ascii_int(str(ctx.request.path_params["index"]), 2)
    if index is None:
        raise not_found("image")
    return index


async def _blob_key(ctx: Ctx) -> tuple[str, str, int]:
    trace_id, index = _trace_id(ctx), _index(ctx)
    key = await ctx.console.browse.trace_image(ctx.workspace, trace_id, index)
    if key is None:
        raise not_found("image")
    return trace_id, key, index


def _image_response(ctx: Ctx, data: bytes, mime: str, etag: str, **headers: str) -> Response:
    etag = f'"{etag}"'
    common = {"ETag": etag, "Cache-Control": IMAGE_CACHE, **headers}
    if ctx.request.headers.get("if-none-match") == etag:
        return ctx.finish(Response(status_code=304, headers=common), cache=True)
    return ctx.finish(Response(data, media_type=mime, headers=common), cache=True)


async def get_image(ctx: Ctx) -> Response:
    """The image at full size; ``?download=1`` makes the browser save it."""
    trace_id, key, index = await _blob_key(ctx)
    try:
        data = await ctx.gateway.output.store.get(key)
    except BlobStoreError:
        raise ServiceUnavailable("the image store is unavailable") from None
    info = probe(data) if data else None
    if data is None or info is None:  # every image served is an image
        raise not_found("image")
    if info.pixels > imaging.max_pixels():
        raise GatewayError(
            f"image of {info.width}x{info.height} pixels is over the limit",
            status=422,
            code="invalid_image",
        )
    kind = info.kind
    headers = {}
    if ctx.request.query_params.get("download"):
        name = f"{trace_id}-{index}.{'jpg' if kind == 'jpeg' else kind}"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return _image_response(ctx, data, MIME_BY_KIND[kind], key, **headers)


async def get_thumb(ctx: Ctx) -> Response:
    _, key, _ = await _blob_key(ctx)
    try:
        thumb = await ctx.console.thumbs.get(key)
    except BlobStoreError:
        raise ServiceUnavailable("the image store is unavailable") from None
    except NotAnImage as exc:
        raise GatewayError(f"no thumbnail: {exc}", status=422, code="invalid_image") from None
    if thumb is None:
        raise not_found("image")
    return _image_response(ctx, thumb, THUMB_MIME, "t" + key)


__all__ = ["PREFIX", "get_image", "get_thumb", "get_trace", "list_traces"]
