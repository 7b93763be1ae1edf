"""The trace record: one per request, filled along the pipeline, written off the hot path.

It never holds base64 or secrets: images are referenced by blob key, the API key by its id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ulid import ULID

from ..ids import random_bits
from ..workspaces import DEFAULT_WORKSPACE


def new_trace_id() -> str:
    """A ULID (ms timestamp + 80 random bits). It names a request, it is not a secret:
    reading a trace needs an API key."""
    return str(ULID.from_int((time.time_ns() // 1_000_000) << 80 | random_bits(80)))


@dataclass(slots=True)
class TraceRecord:
    id: str
    operation: str
    name: str
    started_at: float = field(default_factory=time.time)
    duration_ms: float | None = None
    status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    api_key_id: str | None = None
    identity_id: str | None = None
    thread_id: str | None = None
    prompt_id: str | None = None
    prompt_version: int | None = None
    requested_model: str | None = None
    served_model: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    cache: str | None = None  # "hit" | "miss" | None (not asked)
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    output_blobs: list[str] = field(default_factory=list)
    cost_usd: float | None = None
    usage: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    workspace_id: str = DEFAULT_WORKSPACE  # last: positional construction stays valid


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
