"""The plain values the control-plane store keeps and answers, and the errors it raises.

No I/O and no HTTP here: the store raises ``Conflict`` or ``InvalidRecord`` for what a value
is, ``StoreUnavailable`` for what the database is doing; the edges (``api/``, the CLI) decide
what each means to their caller (409, 400, 503, an exit status).

The trace record is defined here because the store persists it; the pipeline fills it and
``telemetry`` carries it to the store, both through this one type.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from ..workspaces import DEFAULT_WORKSPACE

GroupBy = Literal["key", "identity", "model"]


class StoreUnavailable(Exception):
    """The database cannot be reached right now (refused, dropped, shutting down, locked).

    The writer keeps its buffer and retries; read paths answer 503.
    """


class StoreError(Exception):
    """A write the store refuses for what the value is (retrying will not help)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param  # the field at fault, when one is


class Conflict(StoreError):
    """The id (or a key's hash) is taken."""


class InvalidRecord(StoreError):
    """A value the store will not keep (a malformed workspace id)."""


@dataclass(slots=True)
class TraceRecord:
    """One per request, filled along the pipeline, written off the hot path.

    It never holds base64 or secrets: images are referenced by blob key, the API key by its id.
    """

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
    workspace_id: str = DEFAULT_WORKSPACE  # after the fields positional construction uses
    prompt: str | None = None  # the caller's prompt as sent (the console shows, searches it)
    request: dict[str, Any] | None = None  # the body's parameters as sent, never files


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
