"""Budget counters: which counter a budget uses now, and the seed of a counter's first use.

A counter holds micro-USD spent plus reserved in one window of one budget key. It starts from
the spend the trace store already has for that window (``BudgetCheck.seed``). Many requests
may meet a missing counter at once: ``Seeds`` runs one seed per counter and shares the answer
(kept ``memo_s``, so a request that saw the counter missing just before another created it
does not ask the store again).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from .backend import BudgetItem
from .limits import BudgetCheck, bounded_key, to_micro_usd, to_us


def items_for(budgets: Sequence[BudgetCheck], now_s: float) -> list[BudgetItem]:
    items: list[BudgetItem] = []
    for check in budgets:
        start, end = check.budget.window(now_s)
        limit = max(0, to_micro_usd(check.budget.usd))
        items.append(BudgetItem(bounded_key(check.key), int(start), to_us(end), limit))
    return items


def micro_usd(value: float | None) -> int:
    """A cost as micro-USD; unknown, negative or not finite → 0."""
    if value is None or not math.isfinite(value) or value <= 0:
        return 0
    return to_micro_usd(value)


class Seeds:
    def __init__(self, *, memo_s: float = 60.0, max_entries: int = 10_000) -> None:
        self.memo_us = to_us(memo_s)
        self.max_entries = max_entries
        self.calls = 0  # seeds asked of the store
        self._memo: dict[str, tuple[int, int]] = {}  # counter → (micro-USD, valid until µs)
        self._flights: dict[str, asyncio.Task[int]] = {}

    async def get(self, check: BudgetCheck, item: BudgetItem, now: int) -> int:
        """The counter's seed in micro-USD; raises whatever the seed function raised."""
        memo = self._memo.get(item.counter)
        if memo is not None and memo[1] > now:
            return memo[0]
        flight = self._flights.get(item.counter)
        if flight is None:
            flight = asyncio.ensure_future(self._run(check, item, now))
            flight.add_done_callback(_retrieve)  # no "never retrieved" if every waiter left
            self._flights[item.counter] = flight
        return await asyncio.shield(flight)

    async def _run(self, check: BudgetCheck, item: BudgetItem, now: int) -> int:
        self.calls += 1
        try:
            value = micro_usd(await check.seed(float(item.start)))
        finally:
            del self._flights[item.counter]
        if len(self._memo) >= self.max_entries:
            for key in [k for k, (_, until) in self._memo.items() if until <= now]:
                del self._memo[key]
            while len(self._memo) >= self.max_entries:
                del self._memo[next(iter(self._memo))]
        self._memo[item.counter] = (value, now + self.memo_us)
        return value


def _retrieve(task: asyncio.Task[int]) -> None:
    if not task.cancelled():
        task.exception()
