"""In-process counters: the same decisions as the Redis script, for one process.

Every method decides without awaiting anything, so under one event loop no lock is needed and
an admit or a reserve is atomic. Memory is bounded: idle entries (a GCRA state already in the
past, a concurrency set with no live slot, a budget whose window has ended) are swept now and
then, and past ``max_entries`` the oldest entries are dropped (which can only loosen a limit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .backend import (
    CONCURRENT_RETRY_US,
    BudgetItem,
    BudgetOutcome,
    RateOutcome,
    budget_refuses,
)
from .gcra import CheckPlan, step
from .limits import Which

SWEEP_EVERY = 4096  # decisions between two sweeps of idle entries
BUDGET_GRACE_US = 2 * 3600 * 1_000_000  # a window's counter outlives it for late settles


class LocalBackend:
    def __init__(self, *, max_entries: int = 100_000) -> None:
        self.errors = 0
        self.evicted = 0
        self.max_entries = max_entries
        self._tats: dict[str, int] = {}  # "r:<key>" / "i:<key>" → tat µs
        self._slots: dict[str, dict[str, int]] = {}  # key → ticket → lease expiry µs
        self._budgets: dict[str, tuple[int, int]] = {}  # counter → (micro-USD, expiry µs)
        self._decisions = 0

    def __len__(self) -> int:
        return len(self._tats) + len(self._slots) + len(self._budgets)

    async def admit(
        self, plans: Sequence[CheckPlan], now: int, ticket: str, lease_us: int
    ) -> RateOutcome:
        self._tick(now)
        found: list[tuple[int | None, int | None]] = []
        after: list[tuple[int | None, int | None]] = []
        failed: tuple[int, Which, int] | None = None
        for i, p in enumerate(plans):
            pair_found: list[int | None] = [None, None]
            pair_after: list[int | None] = [None, None]
            for j, (prefix, d) in enumerate((("r:", p.requests), ("i:", p.images))):
                if d is None:
                    continue
                tat = max(self._tats.get(prefix + p.key, 0), now)
                new, early = step(tat, now, d)
                pair_found[j], pair_after[j] = tat, new
                if early > 0 and (failed is None or early > failed[2]):
                    failed = (i, "requests" if j == 0 else "images", early)
            if p.concurrent is not None:
                live = self._live(p.key, now)
                if len(live) >= p.concurrent and (
                    failed is None or CONCURRENT_RETRY_US > failed[2]
                ):
                    failed = (i, "concurrent", CONCURRENT_RETRY_US)
            found.append((pair_found[0], pair_found[1]))
            after.append((pair_after[0], pair_after[1]))
        if failed is not None:
            return RateOutcome(found, failed)
        for p, (req, img) in zip(plans, after, strict=True):
            if p.requests is not None and req is not None:
                self._tats["r:" + p.key] = req
            if p.images is not None and img is not None and p.images.cost:
                self._tats["i:" + p.key] = img
            if p.concurrent is not None:
                self._slots.setdefault(p.key, {})[ticket] = now + lease_us
        return RateOutcome(after)

    async def release(self, plans: Sequence[CheckPlan], ticket: str) -> None:
        for p in plans:
            slots = self._slots.get(p.key)
            if slots is not None:
                slots.pop(ticket, None)
                if not slots:
                    del self._slots[p.key]

    async def reserve(
        self,
        items: Sequence[BudgetItem],
        now: int,
        worst: int,
        unpriced: bool,
        seeds: Mapping[int, int],
    ) -> BudgetOutcome:
        self._tick(now)
        entries = [self._budgets.get(item.counter) for item in items]
        missing = [i for i, e in enumerate(entries) if e is None and i not in seeds]
        if missing:
            return BudgetOutcome(missing)
        used: list[int] = []
        for i, (item, entry) in enumerate(zip(items, entries, strict=True)):
            if entry is None:  # created from its seed whatever is decided: seeding is no spend
                entry = (seeds[i], item.end_us + BUDGET_GRACE_US)
                self._budgets[item.counter] = entry
            used.append(entry[0])
        for i, item in enumerate(items):
            if budget_refuses(used[i], worst, item.limit, unpriced):
                return BudgetOutcome([], i)
        if worst:
            for i, item in enumerate(items):
                self._budgets[item.counter] = (used[i] + worst, item.end_us + BUDGET_GRACE_US)
        return BudgetOutcome([])

    async def settle(self, items: Sequence[BudgetItem], delta: int) -> None:
        for item in items:
            entry = self._budgets.get(item.counter)
            if entry is not None:
                self._budgets[item.counter] = (entry[0] + delta, entry[1])

    async def close(self) -> None:
        return None

    def _live(self, key: str, now: int) -> dict[str, int]:
        slots = self._slots.get(key)
        if slots is None:
            return {}
        expired = [t for t, until in slots.items() if until <= now]
        for t in expired:
            del slots[t]
        return slots

    def _tick(self, now: int) -> None:
        self._decisions += 1
        if self._decisions % SWEEP_EVERY == 0 or len(self) > self.max_entries:
            self.sweep(now)

    def sweep(self, now: int) -> None:
        """Drop idle entries; when still over ``max_entries``, the oldest ones down to 90% of it
        (the margin keeps a flood of new keys from paying for a sweep on every decision)."""
        for key in [k for k, tat in self._tats.items() if tat <= now]:
            del self._tats[key]
        for key in [k for k in self._slots if not self._live(k, now)]:
            del self._slots[key]
        for key in [k for k, (_, until) in self._budgets.items() if until <= now]:
            del self._budgets[key]
        if len(self) <= self.max_entries:
            return
        target = self.max_entries - self.max_entries // 10
        for table in (self._tats, self._slots, self._budgets):
            while len(self) > target and table:
                del table[next(iter(table))]
                self.evicted += 1
