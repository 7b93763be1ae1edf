"""Workspaces and managed API keys in the store: the rows the operator manages, not the ones
every request writes (those go through ``SqlStore.write_batch``).

A mixin of ``SqlStore`` so there is still one store object; it needs only ``connect``,
``_fetch`` and ``driver`` from it. Keys are stored by hash (``workspaces.key_hash``), never
in clear.
"""

from __future__ import annotations

from typing import Any

from ..workspaces import ApiKeyRecord, Workspace, valid_workspace_id
from .clean import clean
from .driver import Driver
from .records import Conflict, InvalidRecord
from .rows import (
    KEY_COLUMNS,
    WORKSPACE_COLUMNS,
    key_from_row,
    key_row,
    workspace_from_row,
    workspace_row,
)

INSERT_WORKSPACE = (
    f"INSERT INTO workspaces ({', '.join(WORKSPACE_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in WORKSPACE_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
UPDATE_WORKSPACE = (
    "UPDATE workspaces SET "
    + ", ".join(f"{c} = ?" for c in WORKSPACE_COLUMNS[1:-1])  # not the id, not created_at
    + " WHERE id = ? RETURNING *"
)
# no conflict target: a taken id and a taken hash both make it a no-op (then Conflict)
INSERT_KEY = (
    f"INSERT INTO api_keys ({', '.join(KEY_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in KEY_COLUMNS)}) ON CONFLICT DO NOTHING RETURNING *"
)


def _checked(workspace_id: str) -> str:
    if not valid_workspace_id(workspace_id):
        raise InvalidRecord(
            f"workspace id {workspace_id[:80]!r}: lowercase letters, digits, '-' and '_',"
            " at most 63 characters, starting with a letter or digit",
            param="workspace",
        )
    return workspace_id


class AccountQueries:
    """``create_workspace`` … ``revoke_key`` of the ``Store`` protocol."""

    driver: Driver

    async def connect(self) -> None:
        raise NotImplementedError  # SqlStore's

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError  # SqlStore's

    async def _write(self, sql: str, *args: Any) -> list[Any]:
        """One statement in its own transaction, returning its rows."""
        await self.connect()
        async with self.driver.transaction() as conn:
            return await conn.fetch(sql, *args)

    # --- workspaces ----------------------------------------------------------------------
    async def create_workspace(self, ws: Workspace) -> Workspace:
        _checked(ws.id)
        rows = await self._write(INSERT_WORKSPACE + " RETURNING *", *workspace_row(ws))
        if not rows:
            raise Conflict(f"workspace {ws.id!r} already exists", param="id")
        return workspace_from_row(rows[0])

    async def ensure_workspace(self, workspace_id: str, now: float) -> Workspace:
        _checked(workspace_id)
        await self.connect()
        async with self.driver.transaction() as conn:
            await conn.execute(
                INSERT_WORKSPACE, *workspace_row(Workspace(workspace_id, created_at=now))
            )
            rows = await conn.fetch("SELECT * FROM workspaces WHERE id = ?", workspace_id)
        return workspace_from_row(rows[0])

    async def get_workspace(self, workspace_id: str) -> Workspace | None:
        rows = await self._fetch("SELECT * FROM workspaces WHERE id = ?", workspace_id)
        return workspace_from_row(rows[0]) if rows else None

    async def list_workspaces(self) -> list[Workspace]:
        rows = await self._fetch("SELECT * FROM workspaces ORDER BY id")
        return [workspace_from_row(r) for r in rows]

    async def update_workspace(self, ws: Workspace) -> Workspace | None:
        row = workspace_row(ws)
        rows = await self._write(UPDATE_WORKSPACE, *row[1:-1], row[0])
        return workspace_from_row(rows[0]) if rows else None

    # --- managed keys --------------------------------------------------------------------
    async def create_key(self, record: ApiKeyRecord) -> ApiKeyRecord:
        _checked(record.workspace_id)
        rows = await self._write(INSERT_KEY, *key_row(record))
        if not rows:
            raise Conflict(f"key {record.id!r} already exists", param="id")
        return key_from_row(rows[0])

    async def get_key_by_hash(self, hash_hex: str) -> ApiKeyRecord | None:
        rows = await self._fetch("SELECT * FROM api_keys WHERE hash = ?", hash_hex)
        return key_from_row(rows[0]) if rows else None

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        rows = await self._fetch("SELECT * FROM api_keys WHERE id = ?", key_id)
        return key_from_row(rows[0]) if rows else None

    async def list_keys(self, workspace: str | None) -> list[ApiKeyRecord]:
        if workspace is None:
            rows = await self._fetch("SELECT * FROM api_keys ORDER BY workspace_id, created_at, id")
        else:
            rows = await self._fetch(
                "SELECT * FROM api_keys WHERE workspace_id = ? ORDER BY created_at, id", workspace
            )
        return [key_from_row(r) for r in rows]

    async def revoke_key(self, key_id: str, now: float) -> ApiKeyRecord | None:
        rows = await self._write(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING *",
            now,
            clean(key_id),
        )
        return key_from_row(rows[0]) if rows else None
