"""The PostgreSQL backend (``database_url: postgresql://…``), driven through an asyncpg pool.

When the server goes away (refused, restarted, shutting down) the pool is thrown away and the
call raises ``StoreUnavailable``; the next call builds a fresh pool, so the batching writer
recovers on its own once the server is back. ``schema`` (or ``?search_path=`` in the URL,
which asyncpg passes to the server) keeps the tables in their own schema — tests use that.
That schema is created when it is missing (a plain lowercase name only: the one PostgreSQL
folds an unquoted ``search_path`` entry to); a refusal is one ``SchemaError`` line.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from ..config import ConfigError
from .driver import Conn, Row, numbered
from .records import StoreUnavailable

log = logging.getLogger("imagegate.store")
MIGRATION_LOCK_KEY = 0x1A6E6A7E  # any constant shared by every imagegate process
# Schemas imagegate creates itself: names PostgreSQL keeps as written when unquoted, so the
# schema created (quoted) is the one ``search_path`` selects; 63 bytes is NAMEDATALEN - 1.
SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class SchemaError(ConfigError):
    """The configured schema cannot be used (creating it was refused, or none exists): a
    deployment problem to report in one line, not a transient outage to wait out."""


def search_path_schema(dsn: str) -> str | None:
    """The first schema of ``?search_path=`` in ``dsn`` (where new tables go), if any."""
    try:
        values = parse_qs(urlsplit(dsn).query).get("search_path")
    except ValueError:
        return None
    first = values[-1].split(",")[0].strip() if values else ""
    return first or None


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
        if schema is not None and not SCHEMA_RE.fullmatch(schema):
            raise SchemaError(f"schema {schema!r}: expected [a-z_][a-z0-9_]*, up to 63 chars")
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
                pool: asyncpg.Pool | None = None
                try:
                    pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=1,
                        max_size=self.max_size,
                        timeout=self.connect_timeout_s,
                        command_timeout=self.command_timeout_s,
                        server_settings=settings,
                    )
                    await self._ensure_schema(pool)
                except Exception as exc:
                    if pool is not None:
                        pool.terminate()
                    if is_transient(exc):
                        raise StoreUnavailable(f"postgresql: {exc!r}") from exc
                    raise
                self._pool = pool
        return self._pool

    async def _ensure_schema(self, pool: asyncpg.Pool) -> None:
        """Create the schema new tables go to when it is missing. Checked first, so a role
        without CREATE on the database works with a schema made for it."""
        schema = self.schema or search_path_schema(self.dsn)
        if schema is None or not SCHEMA_RE.fullmatch(schema):
            return  # e.g. "$user" or a quoted name: the server resolves it, we create nothing
        found = await pool.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
        if found:
            return
        try:
            await pool.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(schema)}")
        except asyncpg.exceptions.InsufficientPrivilegeError as exc:
            raise SchemaError(
                f"database_url: schema {schema!r} does not exist and this role may not create "
                f"it ({exc}); create it, or grant CREATE on the database"
            ) from exc
        except (asyncpg.exceptions.UniqueViolationError, asyncpg.exceptions.DuplicateSchemaError):
            pass  # another worker created it at the same moment
        log.info("store: created schema %s", schema)

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
        except asyncpg.exceptions.InvalidSchemaNameError as exc:
            # "no schema has been selected to create in": no search_path entry exists
            raise SchemaError(f"database_url: {exc}; create the schema of search_path") from exc
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
