"""The control-plane store: identities, threads, prompts and traces (each in a workspace),
workspaces and managed API keys, on SQLite or PostgreSQL.

``open_store(config)`` picks PostgreSQL when ``database_url`` is set, else the SQLite file
``<data_dir>/imagegate.db``; ``await store.connect()`` applies pending migrations.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from .base import (
    Conflict,
    Identity,
    IdentityTotals,
    IdentityUpsert,
    Page,
    Prompt,
    PromptVersion,
    Store,
    StoreUnavailable,
    Thread,
    ThreadUpsert,
    TraceQuery,
    UsageRow,
    WriteItem,
)
from .sql import SqlStore

DB_FILE = "imagegate.db"


def open_store(config: Config, *, schema: str | None = None) -> SqlStore:
    """The store ``config`` names; nothing is opened until the first call."""
    url = config.database_url
    if url:
        if url.startswith(("postgresql://", "postgres://")):
            from .postgres import PostgresDriver

            return SqlStore(PostgresDriver(url, schema=schema))
        if url.startswith("sqlite:///"):
            from .sqlite import SqliteDriver

            return SqlStore(SqliteDriver(url.removeprefix("sqlite:///")))
        from ..config import ConfigError

        raise ConfigError("database_url: expected postgresql://… or sqlite:///path")
    from .sqlite import SqliteDriver

    return SqlStore(SqliteDriver(Path(config.data_dir) / DB_FILE))


__all__ = [
    "Conflict", "Identity", "IdentityTotals", "IdentityUpsert", "Page", "Prompt",
    "PromptVersion", "SqlStore", "Store", "StoreUnavailable", "Thread", "ThreadUpsert",
    "TraceQuery", "UsageRow", "WriteItem", "open_store",
]  # fmt: skip
