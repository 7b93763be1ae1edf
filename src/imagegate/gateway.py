"""``Gateway``: the in-process pipeline, usable without HTTP.

    gw = Gateway(load_config("imagegate.yaml"))
    await gw.start()
    response = await gw.generate(prompt="a red fox", model="placeholder/sketch")

One direction, plain calls: options → control (identity, prompt) → cache → plan → execute →
output (images answered as asked) → cache store → trace (off the hot path).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .errors import GatewayError, InternalError
from .options import build_request
from .output import Output
from .providers.registry import Registry
from .request import ImageRequest, Operation, UploadedFile
from .routing.execute import Attempt, execute
from .routing.plan import build_plan
from .telemetry.trace import NullSink, TraceRecord, TraceSink, new_trace_id

log = logging.getLogger("imagegate")

DEFAULT_NAMES = {op: f"images.{op}" for op in ("generations", "edits", "variations")}
RESULT_EXTRAS = ("output_format", "size", "quality")


@dataclass(slots=True)
class CallContext:
    """Per-call facts that do not come from the body."""

    trace_id: str = field(default_factory=new_trace_id)
    api_key_id: str | None = None
    header_identity_id: str | None = None
    base_url: str = ""


@dataclass(slots=True)
class ImagesResponse:
    """The answer: the JSON body plus the facts the HTTP edge turns into headers."""

    body: dict[str, Any]
    trace_id: str
    model: str | None = None
    attempts: int = 0
    cache: str | None = None  # "HIT" | "MISS" | None

    @property
    def data(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.body["data"]
        return items

    def headers(self) -> dict[str, str]:
        out = {"x-orq-trace-id": self.trace_id}
        if self.model:
            out["x-orq-model"] = self.model
            out["x-orq-attempts"] = str(self.attempts)
        if self.cache:
            out["x-orq-cache"] = self.cache
        return out


def complete_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """``usage`` only when complete: the orq SDK rejects a partial one (spec §5)."""
    if not usage:
        return None
    details = usage.get("input_tokens_details")
    required = ("input_tokens", "output_tokens", "total_tokens")
    if not isinstance(details, dict) or any(usage.get(k) is None for k in required):
        return None
    if "text_tokens" not in details or "image_tokens" not in details:
        return None
    return usage


class Gateway:
    """Wires the pipeline. Components are built from config; tests may inject their own."""

    def __init__(
        self,
        config: Config,
        *,
        registry: Registry | None = None,
        traces: TraceSink | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.registry = registry or Registry(config)
        self.traces: TraceSink = traces or NullSink()
        self.output = Output()
        self.rng = rng or random.Random()
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        await self.traces.start()
        self._started = True

    async def close(self) -> None:
        await self.traces.close()
        await self.output.close()
        await self.registry.close()
        self._started = False

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- library API ---------------------------------------------------------------------
    async def generate(self, **body: Any) -> ImagesResponse:
        return await self.handle(build_request("generations", body), CallContext())

    async def edit(
        self, *, images: list[UploadedFile], mask: UploadedFile | None = None, **body: Any
    ) -> ImagesResponse:
        return await self.handle(build_request("edits", body, images, mask), CallContext())

    async def vary(self, *, image: UploadedFile, **body: Any) -> ImagesResponse:
        return await self.handle(build_request("variations", body, [image]), CallContext())

    # --- the pipeline --------------------------------------------------------------------
    async def handle(self, request: ImageRequest, ctx: CallContext) -> ImagesResponse:
        trace = self._new_trace(request, ctx)
        attempts: list[Attempt] = []
        started = time.perf_counter()
        try:
            response = await self._run(request, ctx, trace, attempts)
        except GatewayError as exc:
            trace.status, trace.error_code, trace.error_message = exc.status, exc.code, exc.message
            raise
        except Exception as exc:
            log.exception("unexpected error in trace %s", ctx.trace_id)
            trace.status, trace.error_code = 500, "internal_error"
            raise InternalError("internal error; see the gateway log") from exc
        finally:
            trace.attempts = [a.as_dict() for a in attempts]
            trace.duration_ms = (time.perf_counter() - started) * 1000
            self.traces.submit(trace)
        trace.status = 200
        return response

    async def _run(
        self,
        request: ImageRequest,
        ctx: CallContext,
        trace: TraceRecord,
        attempts: list[Attempt],
    ) -> ImagesResponse:
        plan = build_plan(request, self.registry, self.rng)
        trace.skipped = [{"model": s.model, "reason": s.reason} for s in plan.skipped]
        outcome = await execute(plan, request, self.config.routing, attempts)
        result = outcome.result
        data, blob_keys = await self.output.answer(result, request.response_format, ctx.base_url)
        trace.served_model = outcome.candidate.model
        trace.output_blobs = blob_keys
        trace.usage = result.usage
        body: dict[str, Any] = {"created": result.created or int(time.time()), "data": data}
        usage = complete_usage(result.usage)
        if usage is not None:
            body["usage"] = usage
        if request.operation != "generations":
            for name in RESULT_EXTRAS:
                value = getattr(result, name)
                if value is not None:
                    body[name] = value
        return ImagesResponse(
            body=body,
            trace_id=ctx.trace_id,
            model=outcome.candidate.model,
            attempts=len(attempts),
        )

    def _new_trace(self, request: ImageRequest, ctx: CallContext) -> TraceRecord:
        opts = request.options
        op: Operation = request.operation
        return TraceRecord(
            id=ctx.trace_id,
            operation=op,
            name=opts.name or DEFAULT_NAMES[op],
            api_key_id=ctx.api_key_id,
            identity_id=opts.identity.id if opts.identity else ctx.header_identity_id,
            thread_id=opts.thread.id if opts.thread else None,
            requested_model=request.model,
            n=request.n_images,
            size=request.size,
            quality=request.quality,
            metadata=dict(request.metadata),
        )
