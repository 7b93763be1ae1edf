"""The little a SQL backend must provide so ``SqlStore`` can stay dialect-free.

Statements are written once with ``?`` placeholders; a driver rewrites them for its database
(asyncpg wants ``$1``). Drivers translate connectivity failures into ``StoreUnavailable`` and
reconnect on their own on the next call, so callers only ever see that one exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Row = Mapping[str, Any]


class Conn(Protocol):
    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...


class Driver(Protocol):
    dialect: str  # "sqlite" | "postgresql"
    text_id: str  # column type of sortable text ids
    greatest: str  # the two-argument maximum function: max (SQLite) or GREATEST

    def transaction(self) -> AbstractAsyncContextManager[Conn]:
        """A connection inside a transaction (committed on exit, rolled back on error)."""
        ...

    def reader(self) -> AbstractAsyncContextManager[Conn]:
        """A connection for reads (no explicit transaction)."""
        ...

    async def lock_migrations(self, conn: Conn) -> None:
        """Serialise concurrent start-ups (several workers) inside the migration transaction."""
        ...

    async def close(self) -> None: ...


def numbered(sql: str) -> str:
    """``?`` placeholders → ``$1, $2, …`` (our statements never hold a literal ``?``)."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)
