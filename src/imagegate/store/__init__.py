"""The control-plane store: identities, threads, prompts and traces (each in a workspace),
workspaces and managed API keys, on SQLite or PostgreSQL. It only persists: no HTTP, no
validation of request bodies, no command line (those live in ``api/`` and ``cli/``).

``open_store(config)`` picks PostgreSQL when ``database_url`` is set, else the SQLite file
``<data_dir>/imagegate.db``, and returns it as a ``Store`` (the protocol in ``base.py``);
``await store.connect()`` applies pending migrations. The values it keeps and answers are in
``records.py``.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from .base import BatchStore, Store
from .records import (
    Conflict,
    Identity,
    IdentityTotals,
    IdentityUpsert,
    InvalidRecord,
    Page,
    Prompt,
    PromptVersion,
    StoreError,
    StoreUnavailable,
    Thread,
    ThreadUpsert,
    TraceQuery,
    TraceRecord,
    UsageRow,
    WriteItem,
)
from .sql import SqlStore

DB_FILE = "imagegate.db"


def open_store(config: Config, *, schema: str | None = None) -> Store:
    """The store ``config`` names; nothing is opened until the first call. Typed as the
    protocol, so mypy proves here that ``SqlStore`` implements ``Store``."""
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
    "DB_FILE",
    "BatchStore",
    "Conflict",
    "Identity",
    "IdentityTotals",
    "IdentityUpsert",
    "InvalidRecord",
    "Page",
    "Prompt",
    "PromptVersion",
    "SqlStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Thread",
    "ThreadUpsert",
    "TraceQuery",
    "TraceRecord",
    "UsageRow",
    "WriteItem",
    "open_store",
]
