"""What the control-plane store holds and the one interface both backends implement.

The gateway talks to ``Store`` only; SQLite (embedded default) and PostgreSQL sit behind it.
Writes that happen on every request (identity and thread upserts, traces) are not awaited by
the request: they travel as ``WriteItem`` values through the batching writer, which hands them
to ``Store.write_batch`` in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..errors import GatewayError
from ..telemetry.trace import TraceRecord
from ..workspaces import DEFAULT_WORKSPACE, ApiKeyRecord, Workspace

GroupBy = Literal["key", "identity", "model"]


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
    workspace_id: str = DEFAULT_WORKSPACE  # ids are unique per workspace


@dataclass(slots=True)
class ThreadUpsert:
    """A ``thread`` seen on a request: first/last seen and the union of tags."""

    id: str
    seen_at: float
    tags: list[str] = field(default_factory=list)
    workspace_id: str = DEFAULT_WORKSPACE  # ids are unique per workspace


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
class UsageRow:
    """One group of ``Store.usage``: a key id, identity id or model (None: traces without one)."""

    group: str | None
    requests: int
    images: int  # images of successful requests
    cost_usd: float  # known costs only
    unpriced: int  # successful requests whose cost is unknown
    errors: int  # requests that did not answer 200
    cache_hits: int


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
    """Identities, threads, prompts and traces, each in one workspace (ids are unique per
    workspace; another workspace's row is never seen), plus workspaces and managed keys.
    Every method may raise ``StoreUnavailable``."""

    async def connect(self) -> None:
        """Open the connection (pool) and apply pending migrations."""
        ...

    async def close(self) -> None: ...

    async def write_batch(self, items: list[WriteItem]) -> None:
        """Apply upserts and insert traces in one transaction, in order; idempotent per item.
        Each item goes to its own ``workspace_id``."""
        ...

    async def get_trace(self, workspace: str, trace_id: str) -> TraceRecord | None: ...

    async def list_traces(self, workspace: str, query: TraceQuery) -> Page: ...

    async def count_traces(self, workspace: str) -> int: ...

    async def get_identity(self, workspace: str, identity_id: str) -> Identity | None: ...

    async def identity_totals(self, workspace: str, identity_id: str) -> IdentityTotals: ...

    async def list_identities(self, workspace: str, cursor: str | None, limit: int) -> Page: ...

    async def get_thread(self, workspace: str, thread_id: str) -> Thread | None: ...

    async def thread_traces(
        self, workspace: str, thread_id: str, limit: int
    ) -> list[TraceRecord]: ...

    async def create_prompt(
        self, workspace: str, prompt_id: str, name: str | None, description: str | None,
        now: float,
    ) -> Prompt:  # fmt: skip
        """Raise ``Conflict`` when the id is taken (in this workspace)."""
        ...

    async def add_prompt_version(
        self,
        workspace: str,
        prompt_id: str,
        template: str | None,
        model: str | None,
        parameters: dict[str, Any],
        now: float,
    ) -> PromptVersion | None:
        """The next version; None when the prompt does not exist."""
        ...

    async def get_prompt(self, workspace: str, prompt_id: str) -> Prompt | None: ...

    async def list_prompts(self, workspace: str, cursor: str | None, limit: int) -> Page: ...

    async def get_prompt_version(
        self, workspace: str, prompt_id: str, version: int | None
    ) -> PromptVersion | None:
        """``version`` None means the latest."""
        ...

    async def list_prompt_versions(self, workspace: str, prompt_id: str) -> list[PromptVersion]: ...

    async def usage(
        self, workspace: str, group_by: GroupBy, since: float | None, until: float | None
    ) -> list[UsageRow]:
        """Traces started in [since, until), summed per key, identity or model."""
        ...

    async def spend(
        self, workspace: str, since: float, *, key_id: str | None = None,
        identity_id: str | None = None,
    ) -> float:  # fmt: skip
        """Known cost of the traces started at or after ``since`` (budgets seed from it)."""
        ...

    # --- workspaces and managed keys ------------------------------------------------------
    async def create_workspace(self, ws: Workspace) -> Workspace:
        """Raise ``Conflict`` when the id is taken."""
        ...

    async def ensure_workspace(self, workspace_id: str, now: float) -> Workspace: ...

    async def get_workspace(self, workspace_id: str) -> Workspace | None: ...

    async def list_workspaces(self) -> list[Workspace]: ...

    async def update_workspace(self, ws: Workspace) -> Workspace | None:
        """None when it does not exist; ``created_at`` is kept."""
        ...

    async def create_key(self, record: ApiKeyRecord) -> ApiKeyRecord:
        """Raise ``Conflict`` when the id or the hash is taken."""
        ...

    async def get_key_by_hash(self, hash_hex: str) -> ApiKeyRecord | None:
        """Revoked keys too (``revoked_at`` set): the caller refuses them."""
        ...

    async def get_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list_keys(self, workspace: str | None) -> list[ApiKeyRecord]:
        """One workspace's keys, or every workspace's (None)."""
        ...

    async def revoke_key(self, key_id: str, now: float) -> ApiKeyRecord | None:
        """None when unknown; revoking twice keeps the first time."""
        ...
