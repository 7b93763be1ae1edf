"""The one interface of the control-plane store; SQLite and PostgreSQL sit behind it.

Everything outside ``store/`` (gateway, control plane, API, tenancy, telemetry, CLI) takes a
``Store``; ``SqlStore`` is the implementation (``open_store`` returns it as one, so mypy
checks that it is). Writes that happen on every request (identity and thread upserts,
traces) are not awaited by the request: they travel as ``WriteItem`` values through the
batching writer, which needs only ``BatchStore.write_batch``. The values are in
``records.py``.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..workspaces import ApiKeyRecord, Workspace
from .idempotency import IdempotencyStore
from .jobs import JobStore
from .records import (
    GroupBy,
    Identity,
    IdentityTotals,
    Page,
    Prompt,
    PromptVersion,
    Thread,
    TraceQuery,
    TraceRecord,
    UsageRow,
    WriteItem,
)


class BatchStore(Protocol):
    """What the batching writer needs: one ordered, idempotent batch write."""

    async def write_batch(self, items: list[WriteItem]) -> None:
        """Apply upserts and insert traces in one transaction, in order; idempotent per item.
        Each item goes to its own ``workspace_id``. ``StoreUnavailable`` when the database is
        down; any other error means an item of the batch is refused."""
        ...


class Store(BatchStore, JobStore, IdempotencyStore, Protocol):
    """Identities, threads, prompts and traces, each in one workspace (ids are unique per
    workspace; another workspace's row is never seen), plus workspaces and managed keys.
    Every method may raise ``StoreUnavailable``."""

    async def connect(self) -> None:
        """Open the connection (pool) and apply pending migrations."""
        ...

    async def close(self) -> None: ...

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
        self,
        workspace: str,
        prompt_id: str,
        name: str | None,
        description: str | None,
        now: float,
    ) -> Prompt:
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
        self,
        workspace: str,
        since: float,
        *,
        key_id: str | None = None,
        identity_id: str | None = None,
    ) -> float:
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
