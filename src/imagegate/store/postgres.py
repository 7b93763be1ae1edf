"""The PostgreSQL backend (``database_url: postgresql://…``), driven through an asyncpg pool.

When the server goes away (refused, restarted, shutting down) the pool is thrown away and the
call raises ``StoreUnavailable``; the next call builds a fresh pool, so the batching writer
recovers on its own once the server is back. ``schema`` (or ``?search_path=`` in the URL,
which asyncpg passes to the server) keeps the tables in their own schema — tests use that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from .base import StoreUnavailable
from .driver import Conn, Row, numbered

log = logging.getLogger("imagegate.store")
MIGRATION_LOCK_KEY = 0x1A6E6A7E  # any constant shared by every imagegate process


# SQLSTATE classes and codes that say "not now", never "not this row": the same statement is
# expected to succeed later (after a restart, a failover, a password rotation, a retry).
TRANSIENT_CLASSES = (
    "08",  # connection exception
    "28",  # invalid authorization (a rotated password, a role not yet granted)
    "40",  # transaction rollback: serialization failure, deadlock
    "53",  # insufficient resources: disk full, out of memory, too many connections
    "57",  # operator intervention: admin/crash shutdown (57P01/2), cannot connect now (57P03)
    "58",  # system error: I/O error
)
# read-only transaction (a failover landed on a replica), lock not available
TRANSIENT_CODES = frozenset({"25006", "55P03"})


def is_transient(exc: BaseException) -> bool:
    """Problems worth waiting out (the server, the network, the role), as opposed to a row the
    database rejects for its data (SQLSTATE 22, 23: a poison row) or a bug."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.exceptions.PostgresError) and isinstance(sqlstate, str):
        if isinstance(exc, asyncpg.exceptions.InvalidCachedStatementError):
            return True  # a migration changed a table under a prepared statement
        return sqlstate[:2] in TRANSIENT_CLASSES or sqlstate in TRANSIENT_CODES
    if isinstance(exc, ValueError):
        return False  # asyncpg could not encode a value (its client-side DataError): the row
    transient = (
        OSError,
        TimeoutError,
        asyncpg.exceptions.InterfaceError,  # connection closed / pool closing
    )
    return isinstance(exc, transient)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _PgConn:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(numbered(sql), *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(numbered(sql), rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self._conn.fetch(numbered(sql), *args)]


class PostgresDriver:
    dialect = "postgresql"
    text_id = 'TEXT COLLATE "C"'
    greatest = "GREATEST"

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        max_size: int = 4,
        connect_timeout_s: float = 3.0,
        command_timeout_s: float = 15.0,
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.max_size = max_size
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                settings = {"search_path": self.schema} if self.schema else None
                try:
                    pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=self.max_size,
                        timeout=self.connect_timeout_s, command_timeout=self.command_timeout_s,
                        server_settings=settings,
                    )  # fmt: skip
                    if self.schema:
                        await pool.execute(
                            f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(self.schema)}"
                        )
                except Exception as exc:
                    if is_transient(exc):
                        raise StoreUnavailable(f"postgresql: {exc!r}") from exc
                    raise
                self._pool = pool
        return self._pool

    async def _drop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    @asynccontextmanager
    async def _acquire(self, transaction: bool) -> AsyncIterator[Conn]:
        pool = await self._get_pool()
        try:
            async with pool.acquire(timeout=self.connect_timeout_s) as conn:
                if transaction:
                    async with conn.transaction():
                        yield _PgConn(conn)
                else:
                    yield _PgConn(conn)
        except StoreUnavailable:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("postgresql unavailable: %r", exc)
            await self._drop_pool()
            raise StoreUnavailable(f"postgresql: {exc!r}") from exc

    def transaction(self) -> Any:
        return self._acquire(True)

    def reader(self) -> Any:
        return self._acquire(False)

    async def lock_migrations(self, conn: Conn) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock(?)", MIGRATION_LOCK_KEY)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, Exception):
                pool.terminate()
