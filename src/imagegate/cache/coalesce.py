"""Coalescing: identical requests in flight at once share one upstream call.

The first caller (the leader) starts the work as its own task; later callers with the same
key await that task. The work is shielded from any one caller's cancellation and is only
cancelled when the last caller waiting on it goes away (e.g. every client disconnected).
Whatever the work needs from the leader (its uploads) must therefore be owned by the work, not
by the leader's request: ``produce`` is called once, synchronously, when the flight starts, so
it can take its holds there and give them back when its task ends (see ``CacheLayer.serve``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Flight(Generic[T]):
    task: asyncio.Task[T]
    waiters: int = 0


class InFlight(Generic[T]):
    """Per-process table of running work by key."""

    def __init__(self) -> None:
        self._flights: dict[str, _Flight[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def waiters(self) -> int:
        """Callers waiting on any flight now (for metrics and tests)."""
        return sum(flight.waiters for flight in self._flights.values())

    async def run(self, key: str, produce: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The work's result and whether this caller started it."""
        flight = self._flights.get(key)
        leader = flight is None
        if flight is None:
            flight = _Flight(asyncio.ensure_future(produce()))
            self._flights[key] = flight
            flight.task.add_done_callback(self._finished(key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task), leader
        except asyncio.CancelledError:
            if flight.waiters == 1 and not flight.task.done():
                self._forget(key, flight)  # new callers must not join a dying flight
                flight.task.cancel()
            raise
        finally:
            flight.waiters -= 1

    def _forget(self, key: str, flight: _Flight[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    def _finished(self, key: str, flight: _Flight[T]) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            self._forget(key, flight)
            if not task.cancelled():
                task.exception()  # mark retrieved even if every waiter left

        return done
