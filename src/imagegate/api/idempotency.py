"""``Idempotency-Key`` on the image POSTs: the HTTP side of ``imagegate.idempotency``.

The endpoint reads the header before the body (``idempotency_key``: a bad key is a 400 naming
the header) and, when there is one, runs the call through ``idempotent`` instead of
``Gateway.handle``. A request that ran the call is answered as usual; one that did not is
sent the kept answer's exact bytes with ``idempotent-replayed: true`` and a trace of its own
(cost 0, no attempts, the note "replay of <trace id>"). Streamed answers (``stream: true``)
are not replayable byte for byte, so a key on one is refused (docs/long-calls.md).
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..config import Config
from ..errors import GatewayError, InvalidRequest
from ..gateway import DEFAULT_NAMES, CallContext, Gateway, ImagesResponse
from ..idempotency.answer import Replay
from ..idempotency.keys import HEADER, Scope, check_key, fingerprint
from ..idempotency.service import Idempotency, make_records
from ..request import ImageRequest
from ..telemetry.trace import TraceRecord
from .responses import JSONResponse

REPLAYED = "idempotent-replayed"


def make_idempotency(config: Config, gateway: Gateway) -> Idempotency:
    """The app's one ``Idempotency`` (records in Redis or the gateway's store)."""
    output = gateway.output
    return Idempotency(
        config.idempotency,
        make_records(config, gateway.store),
        output.store,
        output.signer,
        wait_s=config.routing.deadline_s,
    )


def idempotency_key(request: Request) -> str | None:
    return check_key(request.headers.get(HEADER))


async def idempotent(
    idem: Idempotency, key: str, image_request: ImageRequest, ctx: CallContext, gateway: Gateway
) -> Response:
    """The gateway's answer when this request ran the call; else the kept answer's bytes.
    A ``GatewayError`` propagates (the endpoint answers it) and is kept when it is a 4xx."""
    try:
        if image_request.stream:
            raise InvalidRequest(
                f"{HEADER} cannot be used with stream: true (a streamed answer is not"
                " replayable); send one or the other",
                param=HEADER,
            )
        scope = Scope(ctx.workspace_id, key)
        digest = await fingerprint(image_request, ctx.workspace_id)
        outcome = await idem.run(
            scope,
            digest,
            ctx.trace_id,
            lambda: gateway.handle(image_request, ctx),
            image_request.hold_files,
        )
    except GatewayError as exc:
        if ctx.trace is None:  # refused here, before the pipeline: trace it like a bad body
            gateway.record_rejected(image_request.operation, ctx, exc)
        raise
    if isinstance(outcome, ImagesResponse):
        return JSONResponse(outcome.body, headers=outcome.headers())
    trace = replay_trace(outcome, image_request, ctx)
    gateway.metrics.observe(trace)
    gateway.traces.submit(trace)
    headers = {**outcome.headers, "x-orq-trace-id": ctx.trace_id, REPLAYED: "true"}
    return Response(
        outcome.body, status_code=outcome.status, headers=headers, media_type="application/json"
    )


def replay_trace(replay: Replay, request: ImageRequest, ctx: CallContext) -> TraceRecord:
    """The replay's own trace: what was answered, nothing sent upstream, no cost."""
    opts = request.options
    trace = TraceRecord(
        id=ctx.trace_id,
        operation=request.operation,
        name=opts.name or DEFAULT_NAMES[request.operation],
        duration_ms=0.0,
        status=replay.status,
        api_key_id=ctx.api_key_id,
        identity_id=ctx.identity_of(request),
        thread_id=opts.thread.id if opts.thread else None,
        requested_model=request.model,
        served_model=replay.headers.get("x-orq-model"),
        n=request.n_images,
        size=request.size,
        quality=request.quality,
        output_blobs=list(replay.blob_keys),
        cost_usd=0.0,
        metadata=dict(request.metadata),
        notes=[f"replay of {replay.trace_id} ({HEADER})"],
        workspace_id=ctx.workspace_id,
        prompt=request.prompt,
        request=request.echo,
    )
    if replay.status != 200:
        error = orjson.loads(replay.body).get("error") or {}
        trace.error_code, trace.error_message = error.get("code"), error.get("message")
    ctx.trace = trace  # for the access log
    return trace
