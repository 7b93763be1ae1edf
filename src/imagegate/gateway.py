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
from typing import TYPE_CHECKING, Any

from .admission import Ticket
from .cache.layer import CacheLayer
from .calls import CallContext, ImagesResponse, complete_usage
from .config import Config
from .control import ControlPlane
from .errors import GatewayError, InternalError
from .imaging import check_uploads, configure
from .lifecycle import cancelled_status
from .limits import check_request
from .options import build_request
from .output import Output, Served
from .providers.registry import Registry
from .request import ImageRequest, Operation, UploadedFile
from .routing.execute import Attempt, execute
from .routing.plan import build_plan
from .store import Store, StoreUnavailable, open_store
from .streamed import StreamedResponse, open_stream
from .telemetry import otel
from .telemetry.logjson import CURRENT_TRACE
from .telemetry.metrics import Metrics, render
from .telemetry.trace import NullSink, TraceRecord, TraceSink
from .telemetry.writer import BatchingWriter
from .tenancy import Tenancy, with_headers

if TYPE_CHECKING:
    from .jobs.client import JobHandle
    from .jobs.service import JobService

__all__ = ["DEFAULT_NAMES", "CallContext", "Gateway", "ImagesResponse", "complete_usage"]

log = logging.getLogger("imagegate")

DEFAULT_NAMES = {op: f"images.{op}" for op in ("generations", "edits", "variations")}


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
        self.cache_layer = CacheLayer(
            config.cache, self.output, deadline_s=config.routing.deadline_s
        )
        self.tenancy = Tenancy(config, self.control)
        self._blob_jobs: dict[str, tuple[asyncio.Future[Any], Served]] = {}
        self.rng = rng or random.Random()
        self.metrics = Metrics()
        self._started = False
        self._jobs: JobService | None = None
        self._tracing = otel.configure(config.telemetry)  # None unless telemetry.otlp_endpoint

    @property
    def jobs(self) -> JobService:
        """The async job queue (``jobs/``), built on first use."""
        if self._jobs is None:
            from .jobs.service import JobService

            self._jobs = JobService(self)
        return self._jobs

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
        if self._jobs is not None:  # no job runs or webhook goes out past this point
            await self._jobs.close()
        await self.output.drain()  # background image writes submit their deferred traces
        await self.traces.close()
        await self.writer.close()  # after the traces: a no-op when they are the writer
        await self.store.close()
        await self.output.close()
        await self.cache_layer.close()
        await self.tenancy.close()
        await self.registry.close()
        await otel.release(self._tracing)  # spans still batched are exported
        self._tracing = None
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

    async def submit(
        self,
        operation: Operation = "generations",
        *,
        images: list[UploadedFile] | None = None,
        mask: UploadedFile | None = None,
        **body: Any,
    ) -> JobHandle:
        """Queue an image job (``jobs/``) and return its handle: ``await handle.result()``.
        This process runs jobs (``jobs.workers``) from its first submit on."""
        from .jobs.client import submit

        return await submit(self, operation, body, images or [], mask)

    # --- the pipeline --------------------------------------------------------------------
    async def handle(self, request: ImageRequest, ctx: CallContext) -> ImagesResponse:
        ticket = await self.admit(request, ctx)
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

    async def admit(self, request: ImageRequest, ctx: CallContext) -> Ticket | None:
        """Limits, upload pixel caps, the workspace's rate limits: a refusal is traced here."""
        try:  # before any store, cache or plan work; the trace keeps none of the oversize
            check_request(request, self.config.limits)
            if request.images or request.mask is not None:  # pixel caps, before any decode
                await check_uploads(request.uploads(), self.config.limits)
            return await self.tenancy.admit(ctx.principal, request, ctx.identity_of(request))
        except GatewayError as exc:
            self.record_rejected(request.operation, ctx, exc)
            raise

    async def stream(self, request: ImageRequest, ctx: CallContext) -> StreamedResponse:
        """``handle`` for ``stream: true``: the answer as events (``streamed.py``). Failures
        before the first event raise like ``handle``; later ones end the events."""
        return await open_stream(self, request, ctx)

    def end_trace(
        self, trace: TraceRecord, attempts: list[Attempt], started: float, served: Served | None
    ) -> None:
        """Attempts and duration on the trace, metrics, then the trace submitted (once the
        background image writes of ``served`` have given their blob keys)."""
        trace.attempts = [a.as_dict() for a in attempts]
        trace.duration_ms = (time.perf_counter() - started) * 1000
        self.metrics.observe(trace)
        if served is not None and served.pending is not None:
            self._blob_jobs[trace.id] = (served.pending, served)
        self._submit_trace(trace)

    async def _handle(
        self, request: ImageRequest, ctx: CallContext, ticket: Ticket | None
    ) -> ImagesResponse:
        trace = ctx.trace = self.new_trace(request, ctx)
        span = otel.ACTIVE.request_span(trace) if otel.ACTIVE is not None else None
        named = CURRENT_TRACE.set(ctx.trace_id)  # log lines name the request (logjson.py)
        attempts: list[Attempt] = []
        started = time.perf_counter()
        try:
            response = await self._run(request, ctx, trace, attempts)
            trace.status = 200
        except GatewayError as exc:
            trace.status, trace.error_code, trace.error_message = exc.status, exc.code, exc.message
            raise
        except asyncio.CancelledError:  # the client went away, or the shutdown grace ran out
            trace.status, trace.error_code = cancelled_status()  # 499, or 503 (lifecycle/)
            raise
        except Exception as exc:
            log.exception("unexpected error in trace %s", ctx.trace_id)
            trace.status, trace.error_code = 500, "internal_error"
            raise InternalError("internal error; see the gateway log") from exc
        finally:
            self.end_trace(trace, attempts, started, None)  # ``_respond`` noted its blob jobs
            CURRENT_TRACE.reset(named)
            if span is not None:
                span.end_request(trace)
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
                plan,
                request,
                self.config.routing,
                attempts,
                rng=self.rng,
                finish=self.output.fetch_remote,
            )
            result = outcome.result
            trace.served_model = outcome.candidate.model
            trace.notes.extend(outcome.candidate.param_notes(request))
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
        text = render(
            self.metrics,
            cache={"hit": layer.hits, "miss": layer.misses, "coalesced": layer.coalesced},
            cache_backend_errors=getattr(layer.backend, "errors", None),
            blob_background_failures=self.output.background_failures,
            writer=writer() if callable(writer) else None,
            admission=self.tenancy.admission.stats(),
        )
        return text + layer.metrics_text()  # coalescing, here and across replicas

    def new_trace(self, request: ImageRequest, ctx: CallContext) -> TraceRecord:
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
            notes=list(ctx.notes),
        )
