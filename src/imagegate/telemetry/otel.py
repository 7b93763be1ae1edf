"""OpenTelemetry spans, exported over OTLP/HTTP when ``telemetry.otlp_endpoint`` is set.

Off by default and free when off: ``opentelemetry`` is imported only by ``configure`` with an
endpoint set (the ``otel`` extra installs it), and every place that makes a span first checks
``ACTIVE is not None``. One ``Tracing`` per process (the last gateway configured wins); it has
its own ``TracerProvider``, so an application that embeds the gateway keeps its global one.

The spans, named and attributed after the OpenTelemetry GenAI semantic conventions
(https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/):

- one SERVER span per image request (``gateway.py``), ``generate_content <requested model>``:
  ``gen_ai.operation.name``, ``gen_ai.output.type`` = ``image``, ``gen_ai.request.model``,
  ``gen_ai.response.model`` and ``gen_ai.provider.name`` (the model that served),
  ``gen_ai.usage.*`` when the provider reported tokens, ``http.response.status_code``,
  ``error.type`` (the orq error code), ``imagegate.trace_id`` (the ``x-orq-trace-id``, to find
  the gateway's own trace), ``imagegate.cache``, ``imagegate.attempts``;
- a CLIENT child per upstream attempt (``routing/execute.py``), ``generate_content <model id>``:
  the provider, the model as sent, ``imagegate.attempt`` (1-based, per candidate), the status
  and, on failure, ``error.type`` and an error status; its W3C ``traceparent`` goes to the
  provider with the call (``providers/core/http.py``);
- a CLIENT child of the attempt per provider image download (``blobs/fetch.py``),
  ``GET image``, with ``server.address`` (never the URL: it may be signed).

An incoming ``traceparent``/``tracestate`` (``IncomingTraceContext``, added to the app only
when tracing is on) makes the request span a child of the caller's: the same trace id.
``gen_ai.system`` (the older name of ``gen_ai.provider.name``) is set too, for backends that
still group by it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .settings import TelemetryConfig

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ..store.records import TraceRecord

log = logging.getLogger("imagegate.otel")

OPERATION = "generate_content"  # GenAI's operation for multimodal output; the type says image
MAX_HEADER_BYTES = 512  # an incoming traceparent/tracestate longer than this is ignored
# our provider names → GenAI's well-known ``gen_ai.provider.name`` values; others as they are
PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "google": "gcp.gemini",
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "xai": "x_ai",
}

ACTIVE: Tracing | None = None


def provider_name(name: str) -> str:
    return PROVIDER_NAMES.get(name, name)


class Tracing:
    """The tracer, the exporter and the W3C propagator of this process."""

    def __init__(self, settings: TelemetryConfig) -> None:
        from opentelemetry import context, trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        url = settings.traces_url()
        assert url is not None
        self.context = context
        self.trace = trace
        self.kinds = trace.SpanKind
        self.error = trace.Status(trace.StatusCode.ERROR)
        self.propagator = TraceContextTextMapPropagator()
        exporter = OTLPSpanExporter(
            endpoint=url, headers=dict(settings.headers), timeout=settings.export_timeout_s
        )
        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=settings.export_delay_s * 1000)
        )
        self.tracer = self.provider.get_tracer("imagegate")

    # --- context -------------------------------------------------------------------------
    def remote_parent(self, traceparent: str, tracestate: str | None) -> Context:
        carrier = {"traceparent": traceparent}
        if tracestate:
            carrier["tracestate"] = tracestate
        return self.propagator.extract(carrier)

    def inject(self, headers: dict[str, str]) -> None:
        """The current span's ``traceparent`` (and ``tracestate``) into ``headers``."""
        self.propagator.inject(headers)

    def _start(self, name: str, kind: Any, attributes: dict[str, Any]) -> SpanScope:
        span = self.tracer.start_span(name, kind=kind, attributes=attributes)
        token = self.context.attach(self.trace.set_span_in_context(span))
        return SpanScope(self, span, token)

    # --- the spans -----------------------------------------------------------------------
    def request_span(self, trace: TraceRecord) -> SpanScope:
        model = trace.requested_model or ""
        return self._start(
            f"{OPERATION} {model}".strip(),
            self.kinds.SERVER,
            {
                "gen_ai.operation.name": OPERATION,
                "gen_ai.output.type": "image",
                "gen_ai.request.model": model,
                "imagegate.operation": trace.operation,
                "imagegate.trace_id": trace.id,
                "imagegate.workspace": trace.workspace_id,
            },
        )

    def attempt_span(self, provider: str, model_id: str, number: int) -> SpanScope:
        name = provider_name(provider)
        return self._start(
            f"{OPERATION} {model_id}",
            self.kinds.CLIENT,
            {
                "gen_ai.operation.name": OPERATION,
                "gen_ai.output.type": "image",
                "gen_ai.provider.name": name,
                "gen_ai.system": name,
                "gen_ai.request.model": model_id,
                "imagegate.attempt": number,
            },
        )

    def fetch_span(self, host: str) -> SpanScope:
        return self._start(
            "GET image",
            self.kinds.CLIENT,
            {
                "http.request.method": "GET",
                "server.address": host[:256],
            },
        )

    def current_ids(self) -> tuple[str, str] | None:
        """The current span's trace and span ids in hex (for log lines), or None."""
        found = self.trace.get_current_span().get_span_context()
        if not found.is_valid:
            return None
        return format(found.trace_id, "032x"), format(found.span_id, "016x")

    async def close(self) -> None:
        """Export what is batched, then stop (in a thread: the exporter blocks)."""
        await asyncio.to_thread(self.provider.shutdown)


class SpanScope:
    """A started span, current until ``end``; ``end`` in the task that started it."""

    __slots__ = ("span", "token", "tracing")

    def __init__(self, tracing: Tracing, span: Span, token: object) -> None:
        self.tracing, self.span, self.token = tracing, span, token

    def end(self, attributes: Mapping[str, Any], error: str | None = None) -> None:
        span = self.span
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        if error is not None:
            span.set_attribute("error.type", error)
        try:
            self.tracing.context.detach(self.token)  # type: ignore[arg-type]
        finally:
            span.end()

    def failed(self) -> None:
        self.span.set_status(self.tracing.error)

    # the request span, from the finished trace
    def end_request(self, trace: TraceRecord) -> None:
        served = trace.served_model
        provider = provider_name(served.split("/", 1)[0]) if served and "/" in served else None
        usage = trace.usage or {}
        status = trace.status or 500
        if status >= 500:
            self.failed()
        self.end(
            {
                "gen_ai.response.model": served,
                "gen_ai.provider.name": provider,
                "gen_ai.system": provider,
                "http.response.status_code": status,
                "gen_ai.usage.input_tokens": _int(usage.get("input_tokens")),
                "gen_ai.usage.output_tokens": _int(usage.get("output_tokens")),
                "imagegate.cache": trace.cache,
                "imagegate.attempts": len(trace.attempts),
            },
            error=trace.error_code if status >= 400 else None,
        )

    # an attempt, from its record (``routing/execute.Attempt``: status, code, model)
    def end_attempt(self, status: int | None, code: str | None, model_id: str) -> None:
        ok = status == 200
        if not ok:
            self.failed()
        self.end(
            {
                "gen_ai.response.model": model_id if ok else None,
                "http.response.status_code": status,
            },
            error=None if ok else (code or "connection_error"),
        )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class IncomingTraceContext:
    """Pure ASGI: a request's W3C ``traceparent`` becomes the parent of its spans."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parent = state = None
        for name, value in scope.get("headers") or ():
            if name == b"traceparent" and len(value) <= MAX_HEADER_BYTES:
                parent = value.decode("latin-1")
            elif name == b"tracestate" and len(value) <= MAX_HEADER_BYTES:
                state = value.decode("latin-1")
        if parent is None:
            await self.app(scope, receive, send)
            return
        context = self.tracing.context
        token = context.attach(self.tracing.remote_parent(parent, state))
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)


def configure(settings: TelemetryConfig) -> Tracing | None:
    """Start tracing for this process when an endpoint is set (else stop any earlier one's
    use: ``ACTIVE`` is None); the ``Tracing`` to close, or None."""
    global ACTIVE
    if settings.otlp_endpoint is None:
        ACTIVE = None
        return None
    try:
        tracing = Tracing(settings)
    except ImportError as exc:
        from ..config import ConfigError

        raise ConfigError(
            "telemetry.otlp_endpoint: OpenTelemetry is not installed "
            f"(pip install 'imagegate[otel]'): {exc.name}"
        ) from None
    ACTIVE = tracing
    return tracing


async def release(tracing: Tracing | None) -> None:
    """Flush and stop ``tracing`` (a gateway closing); ``ACTIVE`` no longer names it."""
    global ACTIVE
    if tracing is None:
        return
    if ACTIVE is tracing:
        ACTIVE = None
    await tracing.close()
