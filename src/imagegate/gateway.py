"""``Gateway``: the in-process pipeline, usable without HTTP.

    gw = Gateway(load_config("imagegate.yaml"))
    await gw.start()
    response = await gw.generate(prompt="a red fox", model="placeholder/sketch")

One direction, plain calls: options → control (identity, prompt) → cache → plan → execute →
output (images answered as asked) → cache store → trace (off the hot path).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from .admission import Ticket
from .cache.layer import CacheLayer
from .config import Config
from .control import ControlPlane
from .errors import GatewayError, InternalError
from .imaging import check_uploads, configure
from .limits import check_request
from .options import build_request
from .output import Output, Served
from .providers.registry import Registry
from .request import ImageRequest, Operation, UploadedFile
from .routing.execute import Attempt, execute
from .routing.plan import build_plan
from .store import Store, StoreUnavailable, open_store
from .telemetry.metrics import Metrics, render
from .telemetry.trace import NullSink, TraceRecord, TraceSink, new_trace_id
from .telemetry.writer import BatchingWriter
from .tenancy import Tenancy, with_headers
from .workspaces import OPERATOR, Principal

log = logging.getLogger("imagegate")

DEFAULT_NAMES = {op: f"images.{op}" for op in ("generations", "edits", "variations")}


@dataclass(slots=True)
class CallContext:
    """Per-call facts that do not come from the body."""

    trace_id: str = field(default_factory=new_trace_id)
    api_key_id: str | None = None
    header_identity_id: str | None = None
    base_url: str = ""
    principal: Principal = OPERATOR  # who calls: workspace, role, key
    trace: TraceRecord | None = None  # set by the gateway: read by the HTTP access log

    @property
    def workspace_id(self) -> str:
        return self.principal.workspace_id

    def identity_of(self, request: ImageRequest) -> str | None:
        """The identity a request is for: the body's, else the ``x-orq-identity-id`` header."""
        identity = request.options.identity
        return identity.id if identity is not None else self.header_identity_id


@dataclass(slots=True)
class ImagesResponse:
    """The answer: the JSON body plus the facts the HTTP edge turns into headers."""

    body: dict[str, Any]
    trace_id: str
    model: str | None = None
    attempts: int = 0
    cache: str | None = None  # "HIT" | "MISS" | None
    rate_headers: dict[str, str] = field(default_factory=dict)  # x-ratelimit-*

    @property
    def data(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.body["data"]
        return items

    def headers(self) -> dict[str, str]:
        out = {**self.rate_headers, "x-orq-trace-id": self.trace_id}
        if self.model:
            out["x-orq-model"] = self.model
            out["x-orq-attempts"] = str(self.attempts)
        if self.cache:
            out["x-orq-cache"] = self.cache
        return out


def complete_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """``usage`` only when complete: the orq SDK rejects a partial one."""
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
    """Wires the pipeline. Components are built from config; tests may inject their own.

    The gateway owns the control-plane store and its batching writer: it builds them (unless
    an injected ``control`` brings its own), starts and closes them; the control step and the
    trace sink only use them.
    """

    def __init__(
        self,
        config: Config,
        *,
        registry: Registry | None = None,
        traces: TraceSink | None = None,
        rng: random.Random | None = None,
        control: ControlPlane | None = None,
    ) -> None:
        self.config = config
        configure(config.limits)  # the Pillow pool and pixel cap of this process
        self.registry = registry or Registry(config)
        if control is None:
            store = open_store(config)
            writer = BatchingWriter(store, data_dir=config.data_dir)
            control = ControlPlane(config, store=store, writer=writer)
        self.control = control
        self.store: Store = control.store
        self.writer: BatchingWriter = control.writer
        self.traces: TraceSink = traces or (self.writer if config.traces else NullSink())
        self.output = Output(config)
        self.cache_layer = CacheLayer(config.cache, self.output)
        self.tenancy = Tenancy(config, self.control)
        self._blob_jobs: dict[str, tuple[asyncio.Future[Any], Served]] = {}
        self.rng = rng or random.Random()
        self.metrics = Metrics()
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        await self.writer.start()
        try:
            await self.store.connect()
        except StoreUnavailable as exc:  # the writer keeps retrying; requests still run
            log.warning("store unavailable at start-up (traces will wait): %s", exc)
        await self.traces.start()  # the writer again (a no-op), or an injected sink
        self._started = True

    async def close(self) -> None:
        await self.output.drain()  # background image writes submit their deferred traces
        await self.traces.close()
        await self.writer.close()  # after the traces: a no-op when they are the writer
        await self.store.close()
        await self.output.close()
        await self.cache_layer.close()
        await self.tenancy.close()
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
        try:  # before any store, cache or plan work; the trace keeps none of the oversize
            check_request(request, self.config.limits)
            if request.images or request.mask is not None:  # pixel caps, before any decode
                await check_uploads(request.uploads(), self.config.limits)
            ticket = await self.tenancy.admit(ctx.principal, request, ctx.identity_of(request))
        except GatewayError as exc:
            self.record_rejected(request.operation, ctx, exc)
            raise
        try:
            response = await self._handle(request, ctx, ticket)
        except GatewayError as exc:
            with_headers(exc, ticket)
            raise
        finally:
            if ticket is not None:
                await ticket.release()
        if ticket is not None:
            response.rate_headers = ticket.headers
        return response

    async def _handle(
        self, request: ImageRequest, ctx: CallContext, ticket: Ticket | None
    ) -> ImagesResponse:
        trace = ctx.trace = self._new_trace(request, ctx)
        attempts: list[Attempt] = []
        started = time.perf_counter()
        try:
            response = await self._run(request, ctx, trace, attempts)
            trace.status = 200
        except GatewayError as exc:
            trace.status, trace.error_code, trace.error_message = exc.status, exc.code, exc.message
            raise
        except asyncio.CancelledError:  # the client went away
            trace.status, trace.error_code = 499, "client_closed_request"
            raise
        except Exception as exc:
            log.exception("unexpected error in trace %s", ctx.trace_id)
            trace.status, trace.error_code = 500, "internal_error"
            raise InternalError("internal error; see the gateway log") from exc
        finally:
            trace.attempts = [a.as_dict() for a in attempts]
            trace.duration_ms = (time.perf_counter() - started) * 1000
            self.metrics.observe(trace)
            self._submit_trace(trace)
        return response

    async def _run(
        self,
        request: ImageRequest,
        ctx: CallContext,
        trace: TraceRecord,
        attempts: list[Attempt],
    ) -> ImagesResponse:
        await self.control.apply(request, trace)
        # --- cache (exact match): lookup → coalesce → upstream → store ------------
        if self.cache_layer.asked(request):
            served, how = await self.cache_layer.serve(
                request,
                ctx.workspace_id,  # cache entries belong to the workspace
                lambda: self._upstream(request, ctx, trace, attempts, keep=True),
            )
            trace.cache = "miss" if how == "miss" else "hit"
            if how != "miss":  # answered without an upstream call of its own: costs nothing
                trace.served_model, trace.cost_usd = served.model, 0.0
                if how == "coalesced":
                    trace.notes.append("cache: coalesced with an identical request in flight")
            response = self._respond(request, ctx, trace, served)
            response.cache = "MISS" if how == "miss" else "HIT"
            return response
        # --- no cache ----------------------------------------------------------------------
        served = await self._upstream(request, ctx, trace, attempts, keep=False)
        return self._respond(request, ctx, trace, served)

    async def _upstream(
        self,
        request: ImageRequest,
        ctx: CallContext,
        trace: TraceRecord,
        attempts: list[Attempt],
        *,
        keep: bool,
    ) -> Served:
        """plan → budget → execute → images stored (``keep``: every blob written now)."""
        plan = build_plan(request, self.registry, self.rng)
        trace.skipped = [{"model": s.model, "reason": s.reason} for s in plan.skipped]
        models = [c.model for c in plan.candidates]
        identity = ctx.identity_of(request)
        reservation = await self.tenancy.reserve(ctx.principal, request, models, identity)
        try:
            outcome = await execute(
                plan, request, self.config.routing, attempts,
                rng=self.rng, finish=self.output.fetch_remote,
            )  # fmt: skip
            result = outcome.result
            trace.served_model = outcome.candidate.model
            trace.usage = result.usage
            self.control.price(trace, request, result)
        finally:
            if reservation is not None:  # the real cost, or nothing when no attempt succeeded
                await reservation.settle(trace.cost_usd if trace.served_model else 0.0)
        return await self.output.prepare(
            result,
            request.response_format,
            model=outcome.candidate.model,
            attempts=len(attempts),
            keep=keep,
        )

    def _respond(
        self, request: ImageRequest, ctx: CallContext, trace: TraceRecord, served: Served
    ) -> ImagesResponse:
        """The body in the requested format; blob keys on the trace (never base64)."""
        data = self.output.answer(served, request.response_format, ctx.base_url)
        trace.output_blobs = served.blob_keys()
        if served.pending is not None:
            self._blob_jobs[trace.id] = (served.pending, served)
        body: dict[str, Any] = {"created": served.created, "data": data}
        usage = complete_usage(served.usage)
        if usage is not None:
            body["usage"] = usage
        if request.operation != "generations":
            body.update(served.extras)
        return ImagesResponse(
            body=body,
            trace_id=ctx.trace_id,
            model=served.model,
            attempts=served.attempts if trace.cache != "hit" else 0,
        )

    def _submit_trace(self, trace: TraceRecord) -> None:
        """Submit now, or once background image writes have filled ``output_blobs``."""
        job = self._blob_jobs.pop(trace.id, None)
        if job is None:
            self.traces.submit(trace)
            return
        pending, served = job

        def submit(_: asyncio.Future[Any]) -> None:
            trace.output_blobs = served.blob_keys()
            self.traces.submit(trace)

        pending.add_done_callback(submit)

    def record_rejected(self, operation: Operation, ctx: CallContext, error: GatewayError) -> None:
        """Trace a request refused before the pipeline (bad body), so its trace id resolves."""
        trace = TraceRecord(
            id=ctx.trace_id,
            operation=operation,
            name=DEFAULT_NAMES[operation],
            api_key_id=ctx.api_key_id,
            identity_id=ctx.header_identity_id,
            duration_ms=0.0,
            status=error.status,
            error_code=error.code,
            error_message=error.message,
            workspace_id=ctx.workspace_id,
        )
        ctx.trace = trace
        self.metrics.observe(trace)
        self.traces.submit(trace)

    def metrics_text(self) -> str:
        """Prometheus text for ``GET /metrics`` (this process)."""
        layer = self.cache_layer
        writer = getattr(self.traces, "stats", None)
        return render(
            self.metrics,
            cache={"hit": layer.hits, "miss": layer.misses, "coalesced": layer.coalesced},
            cache_backend_errors=getattr(layer.backend, "errors", None),
            blob_background_failures=self.output.background_failures,
            writer=writer() if callable(writer) else None,
            admission=self.tenancy.admission.stats(),
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
            workspace_id=ctx.workspace_id,
            prompt=request.prompt,
            request=request.echo,
        )
