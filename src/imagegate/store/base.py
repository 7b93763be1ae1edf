"""What the control-plane store holds and the one interface both backends implement.

The gateway talks to ``Store`` only; SQLite (embedded default) and PostgreSQL sit behind it.
Writes that happen on every request (identity and thread upserts, traces) are not awaited by
the request: they travel as ``WriteItem`` values through the batching writer, which hands them
to ``Store.write_batch`` in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import GatewayError
from ..telemetry.trace import TraceRecord


class StoreUnavailable(Exception):
    """The database cannot be reached right now (refused, dropped, shutting down, locked).

    The writer keeps its buffer and retries; read paths answer 503.
    """


class Conflict(GatewayError):
    status = 409
    code = "conflict"
    type = "invalid_request_error"


@dataclass(slots=True)
class IdentityUpsert:
    """A body ``identity``: given fields replace stored ones, ``None`` fields keep theirs."""

    id: str
    seen_at: float
    display_name: str | None = None
    email: str | None = None
    logo_url: str | None = None
    metadata: list[dict[str, Any]] | None = None
    tags: list[str] | None = None


@dataclass(slots=True)
class ThreadUpsert:
    """A ``thread`` seen on a request: first/last seen and the union of tags."""

    id: str
    seen_at: float
    tags: list[str] = field(default_factory=list)


WriteItem = TraceRecord | IdentityUpsert | ThreadUpsert


@dataclass(slots=True)
class Identity:
    id: str
    display_name: str | None
    email: str | None
    logo_url: str | None
    metadata: list[dict[str, Any]] | None
    tags: list[str] | None
    created_at: float
    updated_at: float
    last_seen_at: float


@dataclass(slots=True)
class IdentityTotals:
    requests: int = 0
    succeeded: int = 0
    images: int = 0
    cost_usd: float | None = None  # None when no request had a known cost
    cost_unknown: int = 0  # successful requests whose cost is unknown


@dataclass(slots=True)
class Thread:
    id: str
    tags: list[str]
    first_seen_at: float
    last_seen_at: float


@dataclass(slots=True)
class PromptVersion:
    prompt_id: str
    version: int
    template: str | None
    model: str | None
    parameters: dict[str, Any]
    created_at: float


@dataclass(slots=True)
class Prompt:
    id: str
    name: str | None
    description: str | None
    latest_version: int
    created_at: float
    updated_at: float


@dataclass(slots=True)
class TraceQuery:
    """Filters for listing traces; newest first, ``cursor`` is the last id of the previous page."""

    identity_id: str | None = None
    thread_id: str | None = None
    name: str | None = None
    model: str | None = None  # requested or served
    status: int | None = None
    succeeded: bool | None = None
    cache: str | None = None
    since: float | None = None
    until: float | None = None
    cursor: str | None = None
    limit: int = 50


@dataclass(slots=True)
class Page:
    items: list[Any]
    next_cursor: str | None


class Store(Protocol):
    """Identities, threads, prompts and traces; every method may raise ``StoreUnavailable``."""

    async def connect(self) -> None:
        """Open the connection (pool) and apply pending migrations."""
        ...

    async def close(self) -> None: ...

    async def write_batch(self, items: list[WriteItem]) -> None:
        """Apply upserts and insert traces in one transaction, in order; idempotent per item."""
        ...

    async def get_trace(self, trace_id: str) -> TraceRecord | None: ...

    async def list_traces(self, query: TraceQuery) -> Page: ...

    async def count_traces(self) -> int: ...

    async def get_identity(self, identity_id: str) -> Identity | None: ...

    async def identity_totals(self, identity_id: str) -> IdentityTotals: ...

    async def list_identities(self, cursor: str | None, limit: int) -> Page: ...

    async def get_thread(self, thread_id: str) -> Thread | None: ...

    async def thread_traces(self, thread_id: str, limit: int) -> list[TraceRecord]: ...

    async def create_prompt(
        self, prompt_id: str, name: str | None, description: str | None, now: float
    ) -> Prompt:
        """Raise ``Conflict`` when the id is taken."""
        ...

    async def add_prompt_version(
        self,
        prompt_id: str,
        template: str | None,
        model: str | None,
        parameters: dict[str, Any],
        now: float,
    ) -> PromptVersion | None:
        """The next version; None when the prompt does not exist."""
        ...

    async def get_prompt(self, prompt_id: str) -> Prompt | None: ...

    async def list_prompts(self, cursor: str | None, limit: int) -> Page: ...

    async def get_prompt_version(self, prompt_id: str, version: int | None) -> PromptVersion | None:
        """``version`` None means the latest."""
        ...

    async def list_prompt_versions(self, prompt_id: str) -> list[PromptVersion]: ...
