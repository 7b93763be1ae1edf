"""Traces on their way out: ids, the sink a finished trace goes to, an in-memory sink.

The record itself (``TraceRecord``) is a plain value of the store (``store/records.py``),
named here too because this is where the pipeline meets it.
"""

from __future__ import annotations

import time
from typing import Protocol

from ulid import ULID

from ..ids import random_bits
from ..store.records import TraceRecord

__all__ = ["NullSink", "TraceRecord", "TraceSink", "new_trace_id"]


def new_trace_id() -> str:
    """A ULID (ms timestamp + 80 random bits). It names a request, it is not a secret:
    reading a trace needs an API key."""
    return str(ULID.from_int((time.time_ns() // 1_000_000) << 80 | random_bits(80)))


class TraceSink(Protocol):
    """Where finished traces go. ``submit`` must never block the request."""

    def submit(self, record: TraceRecord) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class NullSink:
    """Keeps the last few traces in memory (for tests and the library without a store)."""

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self.records: list[TraceRecord] = []

    def submit(self, record: TraceRecord) -> None:
        self.records.append(record)
        if len(self.records) > self.keep:
            del self.records[: len(self.records) - self.keep]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
