"""The control-plane databases the API tests run on: SQLite and the shared PostgreSQL.

``database_url`` (a fixture in conftest.py) gives each test no URL (SQLite under its
``data_dir``) or a fresh schema in PostgreSQL, dropped afterwards. A module opts its whole
suite in by wrapping ``make_config``::

    @pytest.fixture
    def make_config(make_config: Any, database_url: str | None) -> Any:
        return on_database(make_config, database_url)
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

PG_DSN = os.environ.get("IMAGEGATE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def _execute(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new, empty PostgreSQL schema; its URL (``?search_path=`` selects it, the store never
    creates one). Dropped with everything in it afterwards."""
    schema = f"ig_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_DSN}?search_path={schema}"
    finally:
        asyncio.run(_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def on_database(make_config: Callable[..., Any], database_url: str | None) -> Callable[..., Any]:
    """``make_config`` with ``database_url`` set unless a test names its own."""

    def make(**overrides: Any) -> Any:
        overrides.setdefault("database_url", database_url)
        return make_config(**overrides)

    return make


async def schema_version(store: Any) -> int:
    """The newest migration applied to ``store`` (connecting applies any pending), read from
    its own table."""
    await store.connect()
    async with store.driver.reader() as conn:
        rows = await conn.fetch("SELECT MAX(version) AS v FROM schema_migrations")
    return int(rows[0]["v"] or 0)
