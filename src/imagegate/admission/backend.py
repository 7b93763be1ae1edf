"""The contract between ``Admission`` and its two counter stores (in-process, Redis).

A backend decides; ``Admission`` plans, builds headers and errors, and fails open. Each call is
one atomic decision: every check of an admit (or every budget of a reserve) consumes, or none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .gcra import CheckPlan
from .limits import Which

CONCURRENT_RETRY_US = 1_000_000


class BackendUnavailable(Exception):
    """The shared store did not answer in time; the caller fails open."""


@dataclass(frozen=True, slots=True)
class RateOutcome:
    """``tats`` per plan: after this admit when it passed, as found when it was refused."""

    tats: list[tuple[int | None, int | None]]
    failed: tuple[int, Which, int] | None = None  # (plan index, dimension, retry after µs)


@dataclass(frozen=True, slots=True)
class BudgetItem:
    """One budget counter: ``key`` within the window that starts at ``start`` (unix s)."""

    key: str  # bounded
    start: int
    end_us: int
    limit: int  # micro-USD

    @property
    def counter(self) -> str:
        return f"b:{self.key}:{self.start}"


@dataclass(frozen=True, slots=True)
class BudgetOutcome:
    missing: list[int]  # items whose counter does not exist yet: seed them and ask again
    failed: int | None = None  # index of the budget that refused


class Backend(Protocol):
    @property
    def errors(self) -> int:
        """Store errors so far (always 0 in-process)."""
        ...

    async def admit(
        self, plans: Sequence[CheckPlan], now: int, ticket: str, lease_us: int
    ) -> RateOutcome: ...

    async def release(self, plans: Sequence[CheckPlan], ticket: str) -> None: ...

    async def reserve(
        self,
        items: Sequence[BudgetItem],
        now: int,
        worst: int,
        unpriced: bool,
        seeds: Mapping[int, int],
    ) -> BudgetOutcome: ...

    async def settle(self, items: Sequence[BudgetItem], delta: int) -> None: ...

    async def close(self) -> None: ...


def budget_refuses(used: int, worst: int, limit: int, unpriced: bool) -> bool:
    """A priced request must fit what is left; an unpriced one (reserving 0) needs some left."""
    return used >= limit if unpriced else used + worst > limit
