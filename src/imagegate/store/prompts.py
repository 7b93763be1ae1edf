"""Prompts and their versions in the store (each in a workspace).

A mixin of ``SqlStore`` (like ``accounts.py``); it needs only ``connect``, ``_fetch`` and
``driver`` from it.
"""

from __future__ import annotations

from typing import Any

from .clean import clean, clean_opt
from .driver import Driver
from .records import Conflict, Page, Prompt, PromptVersion
from .rows import dumps, prompt_from_row, version_from_row


class PromptQueries:
    """The prompt part of the ``Store`` protocol."""

    driver: Driver

    async def connect(self) -> None:
        raise NotImplementedError  # SqlStore's

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError  # SqlStore's

    async def create_prompt(
        self,
        workspace: str,
        prompt_id: str,
        name: str | None,
        description: str | None,
        now: float,
    ) -> Prompt:
        await self.connect()
        async with self.driver.transaction() as conn:
            rows = await conn.fetch(
                "INSERT INTO prompts (workspace_id, id, name, description, latest_version,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)"
                " ON CONFLICT (workspace_id, id) DO NOTHING RETURNING *",
                clean(workspace),
                clean(prompt_id),
                clean_opt(name),
                clean_opt(description),
                now,
                now,
            )
        if not rows:
            raise Conflict(f"prompt {prompt_id!r} already exists", param="id")
        return prompt_from_row(rows[0])

    async def add_prompt_version(
        self,
        workspace: str,
        prompt_id: str,
        template: str | None,
        model: str | None,
        parameters: dict[str, Any],
        now: float,
    ) -> PromptVersion | None:
        await self.connect()
        ws, pid = clean(workspace), clean(prompt_id)
        async with self.driver.transaction() as conn:
            rows = await conn.fetch(
                "UPDATE prompts SET latest_version = latest_version + 1, updated_at = ?"
                " WHERE workspace_id = ? AND id = ? RETURNING latest_version",
                now,
                ws,
                pid,
            )
            if not rows:
                return None
            version = int(rows[0]["latest_version"])
            await conn.execute(
                "INSERT INTO prompt_versions (workspace_id, prompt_id, version, template, model,"
                " parameters, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                ws,
                pid,
                version,
                clean_opt(template),
                clean_opt(model),
                dumps(parameters) or "{}",
                now,
            )
        return PromptVersion(
            pid, version, clean_opt(template), clean_opt(model), dict(parameters), now
        )

    async def get_prompt(self, workspace: str, prompt_id: str) -> Prompt | None:
        rows = await self._fetch(
            "SELECT * FROM prompts WHERE workspace_id = ? AND id = ?", workspace, prompt_id
        )
        return prompt_from_row(rows[0]) if rows else None

    async def list_prompts(self, workspace: str, cursor: str | None, limit: int) -> Page:
        sql, args = "SELECT * FROM prompts WHERE workspace_id = ?", [workspace]
        if cursor is not None:
            sql += " AND id > ?"
            args.append(cursor)
        rows = await self._fetch(sql + " ORDER BY id LIMIT ?", *args, limit + 1)
        items = [prompt_from_row(r) for r in rows[:limit]]
        return Page(items, items[-1].id if len(rows) > limit and items else None)

    async def get_prompt_version(
        self, workspace: str, prompt_id: str, version: int | None
    ) -> PromptVersion | None:
        if version is None:
            rows = await self._fetch(
                "SELECT v.* FROM prompt_versions v JOIN prompts p"
                " ON p.workspace_id = v.workspace_id AND p.id = v.prompt_id"
                " AND v.version = p.latest_version WHERE p.workspace_id = ? AND p.id = ?",
                workspace,
                prompt_id,
            )
        else:
            rows = await self._fetch(
                "SELECT * FROM prompt_versions WHERE workspace_id = ? AND prompt_id = ?"
                " AND version = ?",
                workspace,
                prompt_id,
                version,
            )
        return version_from_row(rows[0]) if rows else None

    async def list_prompt_versions(self, workspace: str, prompt_id: str) -> list[PromptVersion]:
        rows = await self._fetch(
            "SELECT * FROM prompt_versions WHERE workspace_id = ? AND prompt_id = ?"
            " ORDER BY version",
            workspace,
            prompt_id,
        )
        return [version_from_row(r) for r in rows]
