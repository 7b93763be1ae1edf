"""Attempts on the candidate chain (spine version: one attempt, no retries)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

from ..config import RoutingConfig
from ..errors import GatewayError, UpstreamFailure, UpstreamTimeout, from_upstream
from ..request import ImageRequest, ImageResult
from .plan import Candidate, Plan

Next = Literal["done", "retry", "fallback", "skip", "fail"]


@dataclass(slots=True)
class Attempt:
    """One attempt, as recorded on the trace."""

    model: str
    provider: str
    attempt: int
    status: int | None
    code: str | None
    message: str | None
    duration_ms: float
    next: Next

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model, "provider": self.provider, "attempt": self.attempt,
            "status": self.status, "code": self.code, "message": self.message,
            "duration_ms": round(self.duration_ms, 2), "next": self.next,
        }  # fmt: skip


@dataclass(slots=True)
class Outcome:
    result: ImageResult
    candidate: Candidate
    attempts: list[Attempt]


async def execute(
    plan: Plan, request: ImageRequest, settings: RoutingConfig, attempts: list[Attempt]
) -> Outcome:
    candidate = plan.candidates[0]
    timeout_s = settings.default_timeout_s
    if request.options.timeout is not None:
        timeout_s = request.options.timeout.call_timeout / 1000.0
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            result = await candidate.provider.call(candidate.model_id, request)
    except TimeoutError:
        failure: UpstreamFailure = UpstreamTimeout(f"{candidate.model}: timed out")
    except UpstreamFailure as exc:
        failure = exc
    else:
        attempts.append(
            Attempt(candidate.model, candidate.provider_name, 1, 200, None, None,
                    (time.perf_counter() - started) * 1000, "done")
        )  # fmt: skip
        return Outcome(result, candidate, attempts)
    error: GatewayError = from_upstream(failure)
    attempts.append(
        Attempt(candidate.model, candidate.provider_name, 1, failure.status, error.code,
                failure.message, (time.perf_counter() - started) * 1000, "fail")
    )  # fmt: skip
    raise error
