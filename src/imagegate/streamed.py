"""``stream: true``: the pipeline answering as events (OpenAI's image streaming events).

The steps are the JSON pipeline's (admit → control → cache → plan → budget → execute →
output → trace); what differs:

- execute runs ``execute_stream``: retries and fallbacks apply until a candidate's first event
  is in hand (or its whole result, for a provider or model that does not stream); the events
  are then relayed one at a time as they arrive, never buffered as a whole answer;
- a failure after the first event ends the events with an ``error`` event (OpenAI's shape,
  orq's error inside): never a second try, never a second image; at most ``n`` completed
  images are relayed, and the upstream is dropped once they are in;
- a provider that does not stream is called as usual and its images sent as ``*.completed``
  events; so is a cache hit (the cache stores completed images only);
- every completed image is checked, archived and traced like any JSON answer; the trace notes
  how many partial images were sent; a client that leaves mid-stream drops the upstream
  connection and the trace records 499;
- a streamed miss is not coalesced with identical requests in flight: its events cannot be
  shared; it stores its images in the cache when it completes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .admission import Reservation, Ticket
from .cache.key import cache_key, digest_uploads
from .cache.layer import DEFAULT_TTL_S
from .calls import orq_headers
from .errors import (
    GatewayError,
    InternalError,
    InvalidRequest,
    ProviderError,
    UpstreamFailure,
    from_upstream,
)
from .imageinfo import probe_b64
from .output import Served
from .providers.core.events import Event
from .request import GeneratedImage, ImageRequest, ImageResult
from .routing.execute import Attempt, Live, execute_stream
from .routing.plan import Candidate, build_plan
from .tenancy import with_headers

if TYPE_CHECKING:
    from .gateway import CallContext, Gateway

log = logging.getLogger("imagegate.stream")

PREFIX = {"generations": "image_generation", "edits": "image_edit"}
NO_USAGE = {
    "input_tokens": 0,
    "output_tokens": 0,
    "total_tokens": 0,
    "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
}


@dataclass(slots=True)
class StreamEvent:
    """One event: its ``type`` and its JSON document as bytes (``data``)."""

    type: str
    data: bytes


@dataclass(slots=True)
class StreamedResponse:
    """The events to send, and the facts the HTTP edge turns into headers. Iterate
    ``events`` to the end or ``aclose`` it: that ends the trace and frees the request's
    rate-limit slot."""

    events: AsyncIterator[StreamEvent]
    trace_id: str
    model: str | None = None
    attempts: int = 0
    cache: str | None = None  # "HIT" | "MISS" | None
    rate_headers: dict[str, str] = field(default_factory=dict)
    # ends the request even when ``events`` never started (the client left before)
    end: Callable[[], Awaitable[None]] | None = None

    def headers(self) -> dict[str, str]:
        return orq_headers(self.trace_id, self.model, self.attempts, self.cache, self.rate_headers)

    async def aclose(self) -> None:
        closer = getattr(self.events, "aclose", None)
        if closer is not None:
            await closer()
        if self.end is not None:
            await self.end()


def check(request: ImageRequest) -> None:
    """What ``stream: true`` cannot be combined with (a 400 before any work)."""
    if request.response_format == "url":
        # OpenAI's stream events carry ``b64_json`` only, and the models that stream refuse
        # ``response_format``; a URL cannot be streamed, so say so instead of ignoring it.
        raise InvalidRequest(
            "response_format: streamed images are sent as b64_json; url cannot be streamed",
            param="response_format",
        )


def error_event(error: GatewayError) -> StreamEvent:
    """OpenAI's ``error`` event, orq's error body inside."""
    return StreamEvent("error", orjson.dumps({"type": "error", **error.body()}))


async def open_stream(gw: Gateway, request: ImageRequest, ctx: CallContext) -> StreamedResponse:
    """Admit, run until the first event, and hand back the events to send."""
    try:
        check(request)
    except GatewayError as exc:
        gw.record_rejected(request.operation, ctx, exc)
        raise
    ticket = await gw.admit(request, ctx)
    run = _Run(gw, request, ctx, ticket)
    try:
        response = await run.open()
    except GatewayError as exc:
        with_headers(exc, ticket)
        raise
    if ticket is not None:
        response.rate_headers = ticket.headers
    return response


class _Run:
    """One streamed request: its trace, attempts, budget reservation and rate-limit ticket."""

    def __init__(
        self, gw: Gateway, request: ImageRequest, ctx: CallContext, ticket: Ticket | None
    ) -> None:
        self.gw, self.request, self.ctx, self.ticket = gw, request, ctx, ticket
        self.trace = ctx.trace = gw.new_trace(request, ctx)
        self.attempts: list[Attempt] = []
        self.started = time.perf_counter()
        self.reservation: Reservation | None = None
        self.key: str | None = None  # the cache key, when cache was asked
        self.served: Served | None = None
        self.partials = 0
        self.completed = 0

    # --- up to the first event --------------------------------------------------------------
    async def open(self) -> StreamedResponse:
        trace = self.trace
        try:
            events = await self._first()
        except GatewayError as exc:
            trace.status, trace.error_code, trace.error_message = exc.status, exc.code, exc.message
            await self._end()
            raise
        except asyncio.CancelledError:  # the client went away
            trace.status, trace.error_code = 499, "client_closed_request"
            await asyncio.shield(self._end())
            raise
        except Exception as exc:
            log.exception("unexpected error in trace %s", self.ctx.trace_id)
            trace.status, trace.error_code = 500, "internal_error"
            await self._end()
            raise InternalError("internal error; see the gateway log") from exc
        cache = None if self.key is None else ("HIT" if trace.cache == "hit" else "MISS")
        return StreamedResponse(
            self._guard(events),
            self.ctx.trace_id,
            model=trace.served_model,
            attempts=0 if trace.cache == "hit" else len(self.attempts),
            cache=cache,
            end=self._end,
        )

    async def _first(self) -> AsyncIterator[StreamEvent]:
        gw, request, trace = self.gw, self.request, self.trace
        await gw.control.apply(request, trace)
        if gw.cache_layer.asked(request):
            await digest_uploads(request)
            self.key = cache_key(request, self.ctx.workspace_id)
            hit = await gw.cache_layer.lookup(self.key, "b64_json")
            if hit is not None:
                gw.cache_layer.hits += 1
                trace.cache, trace.served_model, trace.cost_usd = "hit", hit.model, 0.0
                self.served, trace.output_blobs = hit, hit.blob_keys()
                return self._replay(hit)
            gw.cache_layer.misses += 1
            trace.cache = "miss"
        plan = build_plan(request, gw.registry, gw.rng)
        trace.skipped = [{"model": s.model, "reason": s.reason} for s in plan.skipped]
        models = [c.model for c in plan.candidates]
        identity = self.ctx.identity_of(request)
        self.reservation = await gw.tenancy.reserve(self.ctx.principal, request, models, identity)
        outcome = await execute_stream(
            plan,
            request,
            gw.config.routing,
            self.attempts,
            rng=gw.rng,
            finish=gw.output.fetch_remote,
        )
        trace.served_model = outcome.candidate.model
        trace.notes.extend(outcome.candidate.param_notes(request))
        if isinstance(outcome.answer, Live):
            return self._relay(outcome.answer, outcome.candidate)
        served = await self._keep(outcome.answer, outcome.candidate.model)
        return self._replay(served)

    # --- the events -------------------------------------------------------------------------
    async def _relay(self, live: Live, candidate: Candidate) -> AsyncIterator[StreamEvent]:
        """The provider's events as they arrive; its completed images kept at the end."""
        finish = self.gw.output.fetch_remote
        images: list[dict[str, Any]] = []  # completed events' documents, for the archive
        event: Event | None = live.first
        try:
            while event is not None:
                if event.kind == "completed":
                    if event is not live.first:  # the first was checked inside the attempt
                        await finish(ImageResult([GeneratedImage(b64=event.b64)]), candidate)
                    images.append(event.doc)
                    self.completed += 1
                else:
                    self.partials += 1
                yield StreamEvent(str(event.doc.get("type", "")), event.data)
                if self.completed >= self.request.n_images:
                    break  # every image asked for: never more
                event = await live.events.next(live.deadline)
        finally:
            live.events.close()
        if not images:
            raise ProviderError(f"{candidate.model}: the stream ended before the image was done")
        await self._keep(_result(images), candidate.model)

    async def _replay(self, served: Served) -> AsyncIterator[StreamEvent]:
        """Finished images (a provider that does not stream, or a cache hit) as completed
        events, in the format they are in."""
        request = self.request
        kind = f"{PREFIX.get(request.operation, 'image_generation')}.completed"
        items = self.gw.output.answer(served, "b64_json", self.ctx.base_url)
        usage = _usage(served.usage)
        for index, item in enumerate(items):
            b64: str = item["b64_json"]
            info = probe_b64(b64)
            doc = {
                "type": kind,
                "b64_json": b64,
                "created_at": served.created,
                "size": f"{info.width}x{info.height}" if info else (request.size or "auto"),
                "quality": served.extras.get("quality") or request.quality or "auto",
                "background": request.background or "auto",
                "output_format": info.kind if info else (request.output_format or "png"),
                "usage": usage if index == len(items) - 1 else NO_USAGE,
            }
            self.completed += 1
            yield StreamEvent(kind, orjson.dumps(doc))

    async def _guard(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """``events``, ended by an error event on a failure; the trace ends with them."""
        trace = self.trace
        try:
            async for item in events:
                yield item
            trace.status = 200
        except (UpstreamFailure, GatewayError) as exc:
            error = from_upstream(exc) if isinstance(exc, UpstreamFailure) else exc
            self._failed(error)
            yield error_event(error)
        except (asyncio.CancelledError, GeneratorExit):  # the client went away
            trace.status, trace.error_code = 499, "client_closed_request"
            raise
        except Exception:
            log.exception("unexpected error in the stream of trace %s", self.ctx.trace_id)
            error = InternalError("internal error; see the gateway log")
            self._failed(error)
            yield error_event(error)
        finally:
            closer = getattr(events, "aclose", None)
            if closer is not None:
                await closer()  # the upstream connection is dropped now
            await asyncio.shield(self._end())

    def _failed(self, error: GatewayError) -> None:
        trace = self.trace
        trace.status, trace.error_code, trace.error_message = (
            error.status,
            error.code,
            error.message,
        )
        trace.notes.append(
            f"stream: ended by an error event after {self.partials} partial "
            f"and {self.completed} completed image event(s)"
        )

    # --- bookkeeping ------------------------------------------------------------------------
    async def _keep(self, result: ImageResult, model: str) -> Served:
        """Price, archive (and cache) completed images, as for a JSON answer."""
        gw, trace = self.gw, self.trace
        trace.usage = result.usage
        gw.control.price(trace, self.request, result)
        served = await gw.output.prepare(
            result, "b64_json", model=model, attempts=len(self.attempts), keep=self.key is not None
        )
        self.served = served
        trace.output_blobs = served.blob_keys()
        if self.key is not None and gw.cache_layer.complete(self.request, served):
            cache = self.request.options.cache
            await gw.cache_layer.store(self.key, served, cache.ttl if cache else DEFAULT_TTL_S)
        return served

    async def _end(self) -> None:
        """Settle the budget, free the rate-limit slot, submit the trace (once)."""
        trace = self.trace
        if trace.duration_ms is not None:
            return
        if trace.status is None:  # closed before its events were sent: the client left
            trace.status, trace.error_code = 499, "client_closed_request"
        trace.notes.append(
            f"stream: {self.partials} partial image(s) and {self.completed} completed image(s)"
            f" sent (partial_images={self.request.partial_images or 0})"
        )
        try:
            if self.reservation is not None:
                cost = trace.cost_usd if trace.served_model and trace.cost_usd else 0.0
                await self.reservation.settle(cost)
                self.reservation = None
        finally:
            if self.ticket is not None:
                await self.ticket.release()
                self.ticket = None
            self.gw.end_trace(trace, self.attempts, self.started, self.served)


def _result(docs: list[dict[str, Any]]) -> ImageResult:
    """The completed events' images as one result (usage: the last event's that has one)."""
    last = docs[-1]
    usage = next((d["usage"] for d in reversed(docs) if isinstance(d.get("usage"), dict)), None)
    created = last.get("created_at")
    return ImageResult(
        images=[GeneratedImage(b64=doc["b64_json"]) for doc in docs],
        created=int(created) if isinstance(created, int | float) else None,
        usage=usage,
        output_format=_text(last.get("output_format")),
        size=_text(last.get("size")),
        quality=_text(last.get("quality")),
    )


def _text(value: Any) -> str | None:
    return value[:64] if isinstance(value, str) else None


def _usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    from .gateway import complete_usage

    return complete_usage(usage) or NO_USAGE
