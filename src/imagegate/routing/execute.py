"""Run the candidate chain: attempts, retries, backoff, timeouts, fallbacks (docs/routing.md).

Per candidate, up to ``policy.max_attempts`` attempts, each bounded by the per-attempt timeout
and by the request's overall deadline. A failure is retried when ``Policy.retryable`` says so,
after ``base * 2^(k-1)`` ±25 % or the provider's ``Retry-After`` (a longer one than allowed
ends the candidate). When a candidate is done failing, the chain moves on only if
``Policy.falls_back``; any other failure is answered at once with the provider's message.

Every attempt is appended to ``attempts`` as it ends, so the caller's trace holds them even
when this raises or is cancelled (a client that disconnects cancels the in-flight call)::

    attempts: list[Attempt] = []
    outcome = await execute(plan, request, config.routing, attempts)
    outcome.candidate.model, len(attempts)      # x-orq-model, x-orq-attempts
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..config import RoutingConfig
from ..errors import (
    GatewayError,
    ProviderTimeout,
    UnsupportedEngine,
    UpstreamConnectionError,
    UpstreamFailure,
    UpstreamTimeout,
    from_upstream,
)
from ..providers.core.events import Event, EventStream, Streams
from ..request import GeneratedImage, ImageRequest, ImageResult
from ..telemetry import otel
from .plan import Candidate, Plan
from .policy import TIMEOUT_STATUS, Policy

Next = Literal["done", "retry", "fallback", "fail"]
CLIENT_CLOSED = 499


@dataclass(slots=True)
class Attempt:
    """One attempt, as recorded on the trace (``next``: what the executor did after it)."""

    model: str
    provider: str
    attempt: int  # 1-based, per candidate
    status: int | None  # HTTP status; 408 for a timeout, None for a broken connection
    code: str | None
    message: str | None
    duration_ms: float
    next: Next
    wait_ms: float | None = None  # the pause before the retry, when next == "retry"

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "provider": self.provider,
            "attempt": self.attempt,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "duration_ms": round(self.duration_ms, 2),
            "next": self.next,
            "wait_ms": None if self.wait_ms is None else round(self.wait_ms, 2),
        }

    def as_failure(self) -> dict[str, Any]:
        """The entry of ``error.failures`` in the final error body (docs/routing.md)."""
        return {
            "model": self.model,
            "attempt": self.attempt,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "duration_ms": round(self.duration_ms, 2),
        }


@dataclass(slots=True)
class Outcome:
    """The result and the candidate that served it (the attempts are in the caller's list)."""

    result: ImageResult
    candidate: Candidate


@dataclass(slots=True)
class Live:
    """A streamed answer whose first event is in hand; the rest is read until ``deadline``
    (the attempt's timeout still bounds the whole stream, on the loop clock)."""

    events: EventStream
    first: Event
    deadline: float


@dataclass(slots=True)
class StreamOutcome:
    """What ``execute_stream`` served: a live stream, or a whole result (a provider or model
    that does not stream), and the candidate that served it."""

    answer: ImageResult | Live
    candidate: Candidate


# Completes a result inside its attempt; gets the candidate so it knows which provider (and so
# which configured hosts) the result came from.
Finish = Callable[[ImageResult, Candidate], Awaitable[ImageResult]]
# One attempt: (candidate, timeout in seconds) → the answer, or an ``UpstreamFailure``.
Call = Callable[[Candidate, float], Awaitable["ImageResult | Live"]]


async def _call(
    candidate: Candidate, request: ImageRequest, timeout_s: float, finish: Finish | None
) -> ImageResult:
    """One attempt bounded by ``timeout_s``; running out is an ``UpstreamTimeout``.

    ``finish`` (e.g. downloading the provider's image URLs) runs inside the same attempt, so a
    broken result is a failure of this attempt: retried or fallen back like any other.
    """
    try:
        async with asyncio.timeout(timeout_s):
            result = await candidate.provider.call(candidate.model_id, request)
            return result if finish is None else await finish(result, candidate)
    except TimeoutError:
        raise UpstreamTimeout(f"{candidate.model}: no answer within {timeout_s:.3g} s") from None


async def _call_stream(
    candidate: Candidate, request: ImageRequest, timeout_s: float, finish: Finish | None
) -> ImageResult | Live:
    """One streamed attempt: open the stream and read its first event within ``timeout_s``.

    Everything up to the first event is the attempt (retried or fallen back like any other);
    the stream goes on within the same deadline. A provider or model that does not stream is
    called as usual and its whole result returned.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    provider = candidate.provider
    try:
        async with asyncio.timeout_at(deadline):
            got: EventStream | ImageResult | None = None
            if isinstance(provider, Streams):
                got = await provider.open_stream(candidate.model_id, request)
            if got is None:
                got = await provider.call(candidate.model_id, request)
            if isinstance(got, ImageResult):
                return got if finish is None else await finish(got, candidate)
    except TimeoutError:
        raise UpstreamTimeout(f"{candidate.model}: no answer within {timeout_s:.3g} s") from None
    assert isinstance(got, EventStream)
    try:  # the stream's own reads stop at the deadline
        first = await got.next(deadline)
        if first is None:
            raise UpstreamConnectionError(f"{candidate.model}: the stream ended with no image")
        if first.kind == "completed" and finish is not None:  # checked like any image
            await finish(ImageResult([GeneratedImage(b64=first.b64)]), candidate)
    except BaseException:
        got.close()
        raise
    return Live(got, first, deadline)


def _record(candidate: Candidate, number: int, failure: UpstreamFailure, started: float) -> Attempt:
    error = from_upstream(failure)
    status = TIMEOUT_STATUS if isinstance(failure, UpstreamTimeout) else failure.status
    return Attempt(
        candidate.model,
        candidate.provider_name,
        number,
        status,
        error.code,
        failure.message,
        (time.perf_counter() - started) * 1000,
        "fail",
    )


def _retry_wait(
    policy: Policy, failure: UpstreamFailure, number: int, rng: random.Random
) -> float | None:
    """Seconds to wait before the next attempt, or None when this candidate is done."""
    if number >= policy.max_attempts or not policy.retryable(failure):
        return None
    if failure.retry_after_s is not None:
        if failure.retry_after_s > policy.max_retry_after_s:
            return None  # the provider asks for longer than we may wait: end this candidate
        return failure.retry_after_s
    return policy.backoff_s(number, rng)


def _failures(attempts: list[Attempt]) -> list[dict[str, Any]]:
    return [a.as_failure() for a in attempts]


class _Run:
    """One request's walk down the chain; owns the deadline and appends to ``attempts``."""

    def __init__(
        self,
        request: ImageRequest,
        policy: Policy,
        attempts: list[Attempt],
        rng: random.Random,
        finish: Finish | None = None,
        call: Call | None = None,
    ) -> None:
        self.request, self.policy, self.attempts, self.rng = request, policy, attempts, rng
        self.finish = finish
        self.call: Call = call or (lambda c, budget: _call(c, request, budget, finish))
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + policy.deadline_s

    def left_s(self) -> float:
        return self.deadline - self.loop.time()

    async def run(self, candidates: list[Candidate]) -> tuple[ImageResult | Live, Candidate]:
        for index, candidate in enumerate(candidates):
            has_next = index + 1 < len(candidates)
            for number in range(1, self.policy.max_attempts + 1):
                if self.left_s() <= 0:
                    raise self.deadline_error()
                budget = min(self.policy.attempt_timeout_s, self.left_s())
                got = await self.attempt(candidate, number, budget)
                if not isinstance(got, _Failed):
                    return got, candidate
                if self.after_failure(got, number, budget, has_next) == "fallback":
                    break
                assert got.record.wait_ms is not None
                await asyncio.sleep(got.record.wait_ms / 1000)
        raise self.deadline_error()  # not reached: the last candidate returns or raises

    async def attempt(
        self, candidate: Candidate, number: int, budget: float
    ) -> ImageResult | Live | _Failed:
        """One call; every ending (even a cancel or an adapter bug) lands in ``attempts``
        (and in a span of its own when OpenTelemetry is on: ``telemetry/otel.py``)."""
        started = time.perf_counter()
        tracing = otel.ACTIVE
        span = (
            None
            if tracing is None
            else tracing.attempt_span(candidate.provider_name, candidate.model_id, number)
        )
        try:
            result = await self.call(candidate, budget)
        except UpstreamFailure as exc:
            failed = _Failed(exc, _record(candidate, number, exc, started))
            self.attempts.append(failed.record)
            return failed
        except asyncio.CancelledError:
            self.attempts.append(_cancelled(candidate, number, started))
            raise
        except Exception as exc:  # an adapter bug: keep it on the trace, answer 500
            self.attempts.append(_crashed(candidate, number, started, exc))
            raise
        else:
            self.attempts.append(
                Attempt(
                    candidate.model,
                    candidate.provider_name,
                    number,
                    200,
                    None,
                    None,
                    (time.perf_counter() - started) * 1000,
                    "done",
                )
            )
            return result
        finally:
            if span is not None:
                last = self.attempts[-1]
                span.end_attempt(last.status, last.code, candidate.model_id)

    def after_failure(
        self, failed: _Failed, number: int, budget: float, has_next: bool
    ) -> Literal["retry", "fallback"]:
        """Retry (``record.wait_ms`` set), move on, or raise the error to answer."""
        failure, record = failed.failure, failed.record
        wait = _retry_wait(self.policy, failure, number, self.rng)
        if wait is not None and wait < self.left_s():
            record.next, record.wait_ms = "retry", wait * 1000
            return "retry"
        cut_short = isinstance(failure, UpstreamTimeout) and budget < self.policy.attempt_timeout_s
        if cut_short or self.left_s() <= 0:
            raise self.deadline_error()
        if has_next and self.policy.falls_back(failure):
            record.next = "fallback"
            return "fallback"
        if wait is not None:  # a retry was due, but its wait would pass the deadline
            raise self.deadline_error()
        error = from_upstream(failure)  # the provider's status and message
        error.failures = _failures(self.attempts)
        raise error

    def deadline_error(self) -> GatewayError:
        last = f"; last failure: {self.attempts[-1].message}" if self.attempts else ""
        return ProviderTimeout(
            f"the request's overall deadline of {self.policy.deadline_s:g} s was reached{last}",
            failures=_failures(self.attempts),
        )


@dataclass(slots=True)
class _Failed:
    failure: UpstreamFailure
    record: Attempt


async def execute(
    plan: Plan,
    request: ImageRequest,
    settings: RoutingConfig,
    attempts: list[Attempt],
    *,
    rng: random.Random | None = None,
    finish: Finish | None = None,
) -> Outcome:
    """Serve ``request`` from the first candidate that succeeds; raise a ``GatewayError``.

    ``rng`` drives the backoff jitter (tests may inject a seeded one); ``finish`` completes a
    result inside its attempt (see ``_call``).
    """
    if not plan.candidates:
        raise UnsupportedEngine("no model can serve this request", param="model")
    policy = Policy.of(request.options, settings)
    run = _Run(request, policy, attempts, rng or random.Random(), finish)
    result, candidate = await run.run(plan.candidates)
    assert isinstance(result, ImageResult)
    return Outcome(result, candidate)


async def execute_stream(
    plan: Plan,
    request: ImageRequest,
    settings: RoutingConfig,
    attempts: list[Attempt],
    *,
    rng: random.Random | None = None,
    finish: Finish | None = None,
) -> StreamOutcome:
    """``execute`` for ``stream: true``: retries and fallbacks run until a candidate's first
    event (or whole result) is in hand; what follows is the caller's to relay."""
    if not plan.candidates:
        raise UnsupportedEngine("no model can serve this request", param="model")
    policy = Policy.of(request.options, settings)

    def call(candidate: Candidate, budget: float) -> Awaitable[ImageResult | Live]:
        return _call_stream(candidate, request, budget, finish)

    run = _Run(request, policy, attempts, rng or random.Random(), finish, call)
    answer, candidate = await run.run(plan.candidates)
    return StreamOutcome(answer, candidate)


def _cancelled(candidate: Candidate, number: int, started: float) -> Attempt:
    return Attempt(
        candidate.model,
        candidate.provider_name,
        number,
        CLIENT_CLOSED,
        "client_closed_request",
        "cancelled: the client went away",
        (time.perf_counter() - started) * 1000,
        "fail",
    )


def _crashed(candidate: Candidate, number: int, started: float, exc: Exception) -> Attempt:
    return Attempt(
        candidate.model,
        candidate.provider_name,
        number,
        None,
        "internal_error",
        f"adapter error: {type(exc).__name__}",
        (time.perf_counter() - started) * 1000,
        "fail",
    )
