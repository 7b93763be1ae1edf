"""The playground: one request through the same pipeline as the API (``Gateway.handle``), as
the signed-in key — its workspace, limits and budgets — then the images and the trace.

The form is posted as multipart (an image may ride along for edits and variations), bounded
by ``uploads.max_file_bytes``; the request is answered as URLs so its images are stored
before the redirect to the result shows them.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.responses import Response

from ..api.images import base_url
from ..api.params import MAX_ID_CHARS, ascii_int, clean_text
from ..errors import GatewayError, InvalidRequest, UnsupportedFileType
from ..gateway import CallContext
from ..options import build_request
from ..request import Operation, UploadedFile, sniff_image
from .traces import row
from .web import PREFIX, Ctx

OPERATIONS: tuple[Operation, ...] = ("generations", "edits", "variations")
SIZES = ("auto", "256x256", "512x512", "1024x1024", "1024x1536", "1536x1024", "1792x1024")
QUALITIES = ("auto", "low", "medium", "high", "standard", "hd")
MAX_CODES = 16
MAX_FALLBACKS = 10


def models(ctx: Ctx) -> list[str]:
    """Suggestions: the placeholder and every priced model of each configured provider."""
    config = ctx.gateway.config
    books = ctx.gateway.control.prices.files
    out = ["placeholder/sketch"]
    for name in ctx.gateway.registry.names():
        entry = config.providers.get(name)
        kind = (entry.type if entry and entry.type else None) or name
        prices = books.get(kind)
        if prices is not None:
            out.extend(f"{name}/{m}" for m in sorted(prices.models) if m != "*")
    return list(dict.fromkeys(out))


def _text(form: Any, name: str, max_chars: int = MAX_ID_CHARS) -> str | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if not clean_text(value, max_chars):
        raise InvalidRequest(f"{name}: at most {max_chars} characters", param=name)
    return value


def _int(form: Any, name: str, lo: int, hi: int) -> int | None:
    raw = _text(form, name, 12)
    if raw is None:
        return None
    value = ascii_int(raw)
    if value is None or not lo <= value <= hi:
        raise InvalidRequest(f"{name}: a whole number {lo}–{hi}", param=name)
    return value


def body_of(form: Any, max_prompt_chars: int) -> tuple[Operation, dict[str, Any]]:
    """The API body the form stands for (orq options included)."""
    operation = form.get("operation") or "generations"
    if operation not in OPERATIONS:
        raise InvalidRequest("operation: generations, edits or variations", param="operation")
    body: dict[str, Any] = {"model": _text(form, "model") or "", "response_format": "url"}
    prompt = form.get("prompt")
    if isinstance(prompt, str) and prompt.strip() and operation != "variations":
        if len(prompt) > max_prompt_chars:
            raise InvalidRequest(f"prompt: at most {max_prompt_chars} characters", param="prompt")
        body["prompt"] = prompt
    for name, choices in (("size", SIZES), ("quality", QUALITIES)):
        value = _text(form, name)
        if value and value in choices and value != "auto":
            body[name] = value
    n = _int(form, "n", 1, 10)
    if n is not None:
        body["n"] = n
    orq: dict[str, Any] = {}
    count = _int(form, "retry_count", 0, 10)
    if count:
        orq["retry"] = {"count": count}
        codes = [c.strip() for c in (_text(form, "retry_on_codes") or "").split(",") if c.strip()]
        if codes:
            parsed = [ascii_int(c, 3) for c in codes[:MAX_CODES]]
            if any(c is None for c in parsed):
                raise InvalidRequest(
                    "retry_on_codes: HTTP statuses, comma separated", param="retry_on_codes"
                )
            orq["retry"]["on_codes"] = parsed
    fallbacks = [m.strip() for m in (_text(form, "fallbacks", 4096) or "").split(",") if m.strip()]
    if fallbacks:
        orq["fallbacks"] = [{"model": m} for m in fallbacks[:MAX_FALLBACKS]]
    if form.get("cache"):
        orq["cache"] = {
            "type": "exact_match",
            "ttl": _int(form, "cache_ttl", 1, 86400 * 30) or 3600,
        }
    for name in ("identity", "thread"):
        value = _text(form, name)
        if value:
            orq[name] = {"id": value}
    trace_name = _text(form, "name")
    if trace_name:
        orq["name"] = trace_name
    if orq:
        body["orq"] = orq
    return operation, body


async def upload_of(form: Any) -> UploadedFile | None:
    upload = form.get("image")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read()
    if not data:
        return None
    if sniff_image(data[:16]) is None:
        raise UnsupportedFileType("image: send a png, jpeg or webp image", param="image")
    return UploadedFile.from_bytes(data, upload.filename[:200], "image")


async def get_playground(ctx: Ctx) -> Response:
    trace = None
    trace_id = ctx.request.query_params.get("trace")
    if trace_id and clean_text(trace_id, MAX_ID_CHARS):
        await ctx.settle()
        trace = await ctx.console.store.get_trace(ctx.workspace, trace_id)
    sent = dict(trace.request or {}) if trace else {}
    return ctx.render(
        "playground.html",
        title="Playground",
        models=models(ctx),
        sizes=SIZES,
        qualities=QUALITIES,
        trace=trace,
        r=row(trace) if trace else None,
        sent=sent,
        prompt=trace.prompt if trace else "",
    )


async def post_playground(ctx: Ctx) -> Response:
    config = ctx.gateway.config
    operation, body = body_of(ctx.form, config.limits.max_prompt_chars)
    image = await upload_of(ctx.form)
    call = CallContext(
        api_key_id=ctx.principal.key_id,
        principal=ctx.principal,
        base_url=base_url(ctx.request, config.public_url),
    )
    try:
        request = build_request(
            operation, body, [image] if image is not None else None, None, config.limits
        )
    except GatewayError as exc:
        ctx.gateway.record_rejected(operation, call, exc)
        raise
    try:
        await ctx.gateway.handle(request, call)
    except GatewayError as exc:
        return ctx.redirect(f"{PREFIX}/playground?trace={call.trace_id}&failed={exc.status}")
    finally:
        request.discard_files()
    return ctx.redirect(f"{PREFIX}/playground?trace={call.trace_id}")
