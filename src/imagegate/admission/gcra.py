"""GCRA (the generic cell rate algorithm) in integer microseconds, and the plan of one admit.

Each limited dimension keeps one number, the theoretical arrival time ``tat``. With ``limit``
units per minute every unit costs ``interval = ceil(60 s / limit)``; a request of ``cost`` units
moves ``tat`` to ``max(tat, now) + cost * interval`` and passes when that is at most
``cap = limit * interval`` ahead of ``now``. So a fresh key passes exactly ``limit`` units at once,
then one more per ``interval``: no fixed window, hence no double burst at a window's edge.
Rounding the interval up keeps the arithmetic exact (the sustained rate is lower by less than
one unit per minute). The Lua script in ``lua.py`` does the same sums on the same integers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import MAX_IMAGES, CheckKind, RateCheck, RateLimitExceeded, Which, bounded_key

WINDOW_US = 60_000_000


@dataclass(frozen=True, slots=True)
class Dim:
    """One GCRA dimension (requests or images) of one check, for one request."""

    limit: int
    interval_us: int
    cost: int

    @property
    def inc(self) -> int:
        return self.cost * self.interval_us

    @property
    def cap(self) -> int:
        return self.limit * self.interval_us


@dataclass(frozen=True, slots=True)
class CheckPlan:
    """What one ``RateCheck`` asks of the backend: None where that limit is not set."""

    kind: CheckKind
    key: str  # bounded
    requests: Dim | None
    images: Dim | None
    concurrent: int | None


def dim(limit: int, cost: int) -> Dim:
    return Dim(limit, -(-WINDOW_US // limit), cost)


def step(tat: int, now: int, d: Dim) -> tuple[int, int]:
    """(new tat, microseconds too early): the request passes when the second is <= 0."""
    base = max(tat, now)
    new = base + d.inc
    return new, new - now - d.cap


def remaining(tat: int, now: int, d: Dim) -> int:
    """Units that would pass right now, given the state ``tat``."""
    ahead = max(tat, now) - now
    return max(0, min(d.limit, (d.cap - ahead) // d.interval_us))


def plan(rates: list[RateCheck], images: int) -> list[CheckPlan]:
    """The checks that limit something; refuses at once what no wait could let through."""
    if images < 0 or images > MAX_IMAGES:
        raise ValueError(f"images must be within 0..{MAX_IMAGES}")
    plans: list[CheckPlan] = []
    seen: set[str] = set()
    for check in rates:
        limits = check.limits
        if limits.empty:
            continue
        key = bounded_key(check.key)
        if key in seen:
            raise ValueError(f"rate check key given twice: {key!r}")
        seen.add(key)
        req = _dimension(check.kind, "requests", limits.rpm, 1)
        img = _dimension(check.kind, "images", limits.images_per_min, images)
        conc = None if limits.concurrent is None else max(0, limits.concurrent)
        if conc == 0:
            raise _impossible(check.kind, "concurrent", "allows no request in flight")
        if req is None and img is None and conc is None:
            continue
        plans.append(CheckPlan(check.kind, key, req, img, conc))
    return plans


def _dimension(kind: CheckKind, which: Which, limit: int | None, cost: int) -> Dim | None:
    if limit is None or (limit <= 0 and cost == 0):
        return None
    if cost > limit:
        unit = "request" if which == "requests" else "image"
        asked = f"{cost} {unit}s" if cost != 1 else f"1 {unit}"
        raise _impossible(
            kind,
            which,
            f"allows {max(0, limit)} {unit}s per minute and this "
            f"request needs {asked}: it can never pass as asked",
        )
    return dim(limit, cost)


def _impossible(kind: CheckKind, which: Which, why: str) -> RateLimitExceeded:
    return RateLimitExceeded(
        kind, which, WINDOW_US / 1_000_000, {}, impossible=True, message=f"{kind} rate limit {why}"
    )
