"""What a caller asks admission to check, what it answers when it says no, and the bounds on
both: plain values, no I/O, shared by every backend."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from imagegate.workspaces import Budget, RateLimits

CheckKind = Literal["key", "identity"]
Which = Literal["requests", "images", "concurrent"]

MAX_RATE_CHECKS = 8  # per admit: a key and an identity today; a bound, not a target
MAX_BUDGET_CHECKS = 8  # per reserve: workspace, key and identity today
MAX_KEY_CHARS = 160  # longer keys are cut and hashed: Redis keys and dict keys stay small
MAX_IMAGES = 1_000_000  # one request can never count more than this against images/min
MAX_LEASE_S = 86_400.0  # a crashed replica's concurrency slot is gone after a day at most
CONCURRENT_RETRY_S = 1.0  # a slot frees when some request ends: there is no better guess


@dataclass(frozen=True, slots=True)
class RateCheck:
    """One rate-limited party of a request: its API key or its identity."""

    kind: CheckKind
    key: str  # e.g. "team-a:key:key_0123…"; bounded by ``bounded_key``
    limits: RateLimits


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One budget a request's cost counts against.

    ``seed(window_start)`` answers the spend already recorded since ``window_start`` (from the
    trace store); it is awaited once per budget and window, when the counter does not exist.
    """

    name: str  # for the refusal message, e.g. "workspace team-a monthly budget"
    key: str
    budget: Budget
    seed: Callable[[float], Awaitable[float]]


class RateLimitExceeded(Exception):
    """A rate limit refused the request; nothing was consumed."""

    def __init__(
        self,
        kind: CheckKind,
        which: Which,
        retry_after_s: float,
        headers: dict[str, str],
        *,
        impossible: bool = False,
        message: str | None = None,
    ) -> None:
        self.kind = kind
        self.which = which
        self.retry_after_s = retry_after_s
        self.headers = headers
        self.impossible = impossible  # the request can never pass as asked (n > limit)
        super().__init__(message or f"{kind} rate limit exceeded ({which})")


class BudgetExceeded(Exception):
    """A budget refused the request; nothing was reserved."""

    def __init__(self, name: str, retry_after_s: float, *, unpriced: bool = False) -> None:
        self.name = name
        self.retry_after_s = retry_after_s  # until the budget's window ends
        self.unpriced = unpriced  # refused because the price is unknown, not because of spend
        why = "the price of this request is unknown" if unpriced else "it is spent"
        super().__init__(f"{name} exceeded: {why}")


def bounded_key(key: str) -> str:
    """``key`` itself when short, else a readable head plus a hash of the whole: callers build
    keys from ids they were sent, and memory per key must not grow with them."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{key[: MAX_KEY_CHARS - 34]}:#{digest}"


def to_us(seconds: float) -> int:
    """Clock seconds → integer microseconds: every decision is integer arithmetic."""
    return round(seconds * 1_000_000)


def to_micro_usd(usd: float) -> int:
    """Dollars → integer micro-dollars, so repeated additions never drift."""
    return round(usd * 1_000_000)
