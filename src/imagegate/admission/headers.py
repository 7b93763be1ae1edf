"""``x-ratelimit-*`` headers (OpenAI's names) from the GCRA states an admit saw or left.

When several checks limit the same dimension (a key and an identity), the one with the fewest
units left is shown: it is the one the client will hit first. Ties go to the key.
"""

from __future__ import annotations

from collections.abc import Sequence

from .gcra import CheckPlan, Dim, remaining

# per check: (requests tat, images tat), None where that dimension is not limited
Tats = Sequence[tuple[int | None, int | None]]


def rate_headers(plans: Sequence[CheckPlan], tats: Tats, now: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    for index, name in enumerate(("requests", "images")):
        best: tuple[int, int, Dim, int] | None = None
        for plan, pair in zip(plans, tats, strict=True):
            d = plan.requests if index == 0 else plan.images
            tat = pair[index]
            if d is None or tat is None:
                continue
            rank = (remaining(tat, now, d), 0 if plan.kind == "key" else 1)
            if best is None or rank < best[:2]:
                best = (*rank, d, tat)
        if best is None:
            continue
        left, _, d, tat = best
        headers[f"x-ratelimit-limit-{name}"] = str(d.limit)
        headers[f"x-ratelimit-remaining-{name}"] = str(left)
        headers[f"x-ratelimit-reset-{name}"] = duration(max(0, tat - now))
    return headers


def duration(us: int) -> str:
    """Microseconds → ``"6s"``, ``"0.25s"``: seconds, rounded up to the millisecond."""
    ms = -(-us // 1000)
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms / 1000:.3f}".rstrip("0") + "s"
