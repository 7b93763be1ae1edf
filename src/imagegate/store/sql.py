"""``Store`` over any ``Driver``: the SQL is written once, for SQLite and PostgreSQL alike.

Connecting is lazy and retried: ``connect`` (or the first call) opens the database and applies
pending migrations; until that succeeds every call raises ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from .accounts import AccountQueries
from .browse import BrowseQueries
from .clean import clean, clean_opt
from .driver import Conn, Driver
from .idempotency import IdempotencyQueries
from .jobs import JobQueries
from .migrations import MIGRATIONS, render
from .prompts import PromptQueries
from .records import (
    Identity,
    IdentityTotals,
    IdentityUpsert,
    Page,
    Thread,
    ThreadUpsert,
    TraceQuery,
    TraceRecord,
    WriteItem,
)
from .rows import (
    TRACE_COLUMNS,
    dumps,
    identity_from_row,
    trace_from_row,
    trace_row,
)
from .usage import UsageQueries

log = logging.getLogger("imagegate.store")

INSERT_TRACE = (
    f"INSERT INTO traces ({', '.join(TRACE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in TRACE_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
UPSERT_IDENTITY = """
INSERT INTO identities (workspace_id, id, display_name, email, logo_url, metadata, tags,
                        created_at, updated_at, last_seen_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (workspace_id, id) DO UPDATE SET
    display_name = COALESCE(excluded.display_name, identities.display_name),
    email = COALESCE(excluded.email, identities.email),
    logo_url = COALESCE(excluded.logo_url, identities.logo_url),
    metadata = COALESCE(excluded.metadata, identities.metadata),
    tags = COALESCE(excluded.tags, identities.tags),
    updated_at = excluded.updated_at,
    last_seen_at = {greatest}(identities.last_seen_at, excluded.last_seen_at)
"""
UPSERT_THREAD = """
INSERT INTO threads (workspace_id, id, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)
ON CONFLICT (workspace_id, id) DO UPDATE SET
    first_seen_at = {least}(threads.first_seen_at, excluded.first_seen_at),
    last_seen_at = {greatest}(threads.last_seen_at, excluded.last_seen_at)
"""
INSERT_TAG = (
    "INSERT INTO thread_tags (workspace_id, thread_id, tag) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
)
# usage(): what a group is, per group_by (fixed strings, never caller text)


class SqlStore(
    AccountQueries, UsageQueries, BrowseQueries, PromptQueries, JobQueries, IdempotencyQueries
):
    """The one store implementation; ``driver`` supplies connections and dialect bits.

    Everything a request leaves behind is kept per workspace: every read and write below
    takes the workspace first (write items carry their ``workspace_id``). Workspaces and
    managed keys themselves are in ``AccountQueries``, prompts in ``PromptQueries``, jobs and
    their webhook outbox in ``JobQueries`` (``jobs.py``, ``deliveries.py``).
    """

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        least = "min" if driver.greatest == "max" else "LEAST"
        self._upsert_identity = UPSERT_IDENTITY.format(greatest=driver.greatest)
        self._upsert_thread = UPSERT_THREAD.format(greatest=driver.greatest, least=least)
        self._migrated = False
        self._migrating = asyncio.Lock()

    @property
    def dialect(self) -> str:
        return self.driver.dialect

    # --- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        if self._migrated:
            return
        async with self._migrating:
            if self._migrated:
                return
            async with self.driver.transaction() as conn:
                await self.driver.lock_migrations(conn)
                await self._migrate(conn)
            self._migrated = True

    async def _migrate(self, conn: Conn) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
            "applied_at DOUBLE PRECISION NOT NULL)"
        )
        rows = await conn.fetch("SELECT version FROM schema_migrations")
        applied = {int(r["version"]) for r in rows}
        for version, description, statements in MIGRATIONS:
            if version in applied:
                continue
            now = time.time()
            for statement in statements:
                await conn.execute(render(statement, self.driver.text_id, now))
            await conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                version,
                description,
                time.time(),
            )
            log.info("store: applied migration %d (%s)", version, description)

    async def close(self) -> None:
        await self.driver.close()

    # --- the writer's batch --------------------------------------------------------------
    async def write_batch(self, items: list[WriteItem]) -> None:
        await self.connect()
        identities, threads, tags = _merge_upserts(items)
        traces = [trace_row(i) for i in items if isinstance(i, TraceRecord)]
        async with self.driver.transaction() as conn:
            if identities:
                await conn.executemany(self._upsert_identity, identities)
            if threads:
                await conn.executemany(self._upsert_thread, threads)
            if tags:
                await conn.executemany(INSERT_TAG, tags)
            if traces:
                await conn.executemany(INSERT_TRACE, traces)

    # --- reads ---------------------------------------------------------------------------
    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        await self.connect()
        args = tuple(clean_opt(a) for a in args)  # look values up as they were stored
        async with self.driver.reader() as conn:
            return await conn.fetch(sql, *args)

    async def get_trace(self, workspace: str, trace_id: str) -> TraceRecord | None:
        rows = await self._fetch(
            "SELECT * FROM traces WHERE workspace_id = ? AND id = ?", workspace, trace_id
        )
        return trace_from_row(rows[0]) if rows else None

    async def list_traces(self, workspace: str, query: TraceQuery) -> Page:
        where: list[str] = ["workspace_id = ?"]
        args: list[Any] = [workspace]
        for column in ("identity_id", "thread_id", "name", "cache", "status"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if query.model is not None:
            where.append("(requested_model = ? OR served_model = ?)")
            args += [query.model, query.model]
        if query.succeeded is not None:
            where.append("status = 200" if query.succeeded else "(status IS NULL OR status <> 200)")
        if query.since is not None:
            where.append("started_at >= ?")
            args.append(query.since)
        if query.until is not None:
            where.append("started_at < ?")
            args.append(query.until)
        if query.cursor is not None:
            where.append("id < ?")
            args.append(query.cursor)
        sql = "SELECT * FROM traces WHERE " + " AND ".join(where) + " ORDER BY id DESC LIMIT ?"
        args.append(query.limit + 1)
        rows = await self._fetch(sql, *args)
        items = [trace_from_row(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(items, items[-1].id if more and items else None)

    async def count_traces(self, workspace: str) -> int:
        rows = await self._fetch(
            "SELECT COUNT(*) AS c FROM traces WHERE workspace_id = ?", workspace
        )
        return int(rows[0]["c"])

    async def get_identity(self, workspace: str, identity_id: str) -> Identity | None:
        rows = await self._fetch(
            "SELECT * FROM identities WHERE workspace_id = ? AND id = ?", workspace, identity_id
        )
        return identity_from_row(rows[0]) if rows else None

    async def identity_totals(self, workspace: str, identity_id: str) -> IdentityTotals:
        rows = await self._fetch(
            "SELECT COUNT(*) AS requests,"
            " SUM(CASE WHEN status = 200 THEN 1 ELSE 0 END) AS succeeded,"
            " SUM(CASE WHEN status = 200 THEN COALESCE(n, 1) ELSE 0 END) AS images,"
            " SUM(cost_usd) AS cost_usd,"
            " SUM(CASE WHEN status = 200 AND cost_usd IS NULL THEN 1 ELSE 0 END) AS unknown"
            " FROM traces WHERE workspace_id = ? AND identity_id = ?",
            workspace,
            identity_id,
        )
        r = rows[0]
        cost = r["cost_usd"]
        return IdentityTotals(
            requests=int(r["requests"] or 0),
            succeeded=int(r["succeeded"] or 0),
            images=int(r["images"] or 0),
            cost_usd=None if cost is None else round(float(cost), 8),
            cost_unknown=int(r["unknown"] or 0),
        )

    async def list_identities(self, workspace: str, cursor: str | None, limit: int) -> Page:
        sql, args = "SELECT * FROM identities WHERE workspace_id = ?", [workspace]
        if cursor is not None:
            sql += " AND id > ?"
            args.append(cursor)
        rows = await self._fetch(sql + " ORDER BY id LIMIT ?", *args, limit + 1)
        items = [identity_from_row(r) for r in rows[:limit]]
        return Page(items, items[-1].id if len(rows) > limit and items else None)

    async def get_thread(self, workspace: str, thread_id: str) -> Thread | None:
        rows = await self._fetch(
            "SELECT * FROM threads WHERE workspace_id = ? AND id = ?", workspace, thread_id
        )
        if not rows:
            return None
        tags = await self._fetch(
            "SELECT tag FROM thread_tags WHERE workspace_id = ? AND thread_id = ? ORDER BY tag",
            workspace,
            thread_id,
        )
        r = rows[0]
        return Thread(r["id"], [t["tag"] for t in tags], r["first_seen_at"], r["last_seen_at"])

    async def thread_traces(self, workspace: str, thread_id: str, limit: int) -> list[TraceRecord]:
        rows = await self._fetch(
            "SELECT * FROM traces WHERE workspace_id = ? AND thread_id = ?"
            " ORDER BY started_at, id LIMIT ?",
            workspace,
            thread_id,
            limit,
        )
        return [trace_from_row(r) for r in rows]


def _merge_upserts(
    items: list[WriteItem],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[str, str, str]]]:
    """One row per identity and per thread of a workspace in a batch (a busy identity is one
    upsert); ``alice`` of two workspaces stays two rows.

    Later given fields replace earlier ones, exactly as applying the upserts in order would.
    Strings are cleaned here (``rows.clean``), like every other value the store writes.
    """
    idents: dict[tuple[str, str], list[Any]] = {}
    threads: dict[tuple[str, str], list[Any]] = {}
    tags: dict[tuple[str, str, str], None] = {}
    for item in items:
        if isinstance(item, IdentityUpsert):
            given = [
                clean_opt(item.display_name),
                clean_opt(item.email),
                clean_opt(item.logo_url),
                dumps(item.metadata),
                dumps(item.tags),
            ]
            key = (clean(item.workspace_id), clean(item.id))
            row = idents.get(key)
            if row is None:
                idents[key] = [*key, *given, item.seen_at, item.seen_at, item.seen_at]
                continue
            for k, value in enumerate(given, start=2):
                if value is not None:
                    row[k] = value
            row[7] = min(row[7], item.seen_at)
            row[8] = row[9] = max(row[9], item.seen_at)
        elif isinstance(item, ThreadUpsert):
            key = (clean(item.workspace_id), clean(item.id))
            seen = threads.setdefault(key, [*key, item.seen_at, item.seen_at])
            seen[2], seen[3] = min(seen[2], item.seen_at), max(seen[3], item.seen_at)
            tags.update(((*key, clean(str(tag))), None) for tag in item.tags)
    return (
        [tuple(r) for r in idents.values()],
        [tuple(r) for r in threads.values()],
        list(tags),
    )
