"""The embedded backend: one SQLite file (WAL) under ``data_dir``, driven through aiosqlite.

One connection serves everything; an ``asyncio.Lock`` keeps a transaction's statements from
interleaving with another coroutine's. SQLite itself does the work in aiosqlite's thread, so
the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from .driver import Conn, Row
from .records import StoreUnavailable

TRANSIENT = ("locked", "busy", "unable to open", "disk i/o", "readonly", "disk is full")
# Primary result codes that mean "not now": BUSY, LOCKED, NOMEM, READONLY, INTERRUPT, IOERR,
# FULL, CANTOPEN, PROTOCOL. A constraint or type failure (a poison row) is none of these.
TRANSIENT_CODES = frozenset({5, 6, 7, 8, 9, 10, 13, 14, 15})


def _is_transient(exc: sqlite3.Error) -> bool:
    """Locked, busy, disk full, read-only file, I/O error: the writer waits them out."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in TRANSIENT_CODES:
        return True
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(t in text for t in TRANSIENT)


class _SqliteConn:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(sql, args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._conn.execute(sql, args) as cursor:
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]


class SqliteDriver:
    dialect = "sqlite"
    text_id = "TEXT"
    greatest = "max"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        # Reads go through a connection of their own: in WAL mode they see every committed
        # write and never wait behind the writer's batch (a key lookup must not queue behind
        # 256 trace inserts).
        self._read_conn: aiosqlite.Connection | None = None
        self._read_lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(self.path, isolation_level=None)
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA busy_timeout=5000")
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
        return conn

    async def _open(self) -> aiosqlite.Connection:
        if self._conn is None:
            self._conn = await self._connect()
        return self._conn

    async def _open_reader(self) -> aiosqlite.Connection:
        if self._read_conn is None:
            self._read_conn = await self._connect()
        return self._read_conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        async with self._lock:
            conn = await self._open()
            try:
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _SqliteConn(conn)
                except BaseException:
                    await conn.rollback()
                    raise
                await conn.commit()
            except sqlite3.Error as exc:
                if _is_transient(exc):
                    raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
                raise

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[Conn]:
        async with self._read_lock:
            conn = await self._open_reader()
            try:
                yield _SqliteConn(conn)
            except sqlite3.Error as exc:
                if _is_transient(exc):
                    raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
                raise

    async def lock_migrations(self, conn: Conn) -> None:
        return None  # BEGIN IMMEDIATE already holds the write lock

    async def close(self) -> None:
        for attr in ("_read_conn", "_conn"):
            conn = getattr(self, attr)
            if conn is not None:
                setattr(self, attr, None)
                await conn.close()
