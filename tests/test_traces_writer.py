"""The batching writer: batches in order, bounded buffer, bad items isolated, flush on close."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from imagegate.store import IdentityUpsert, SqlStore
from imagegate.store.postgres import PostgresDriver
from imagegate.store.sqlite import SqliteDriver
from imagegate.telemetry.trace import TraceRecord, new_trace_id
from imagegate.telemetry.writer import BatchingWriter


def trace(**fields: object) -> TraceRecord:
    base: dict[str, object] = {"id": new_trace_id(), "operation": "generations", "name": "t"}
    base.update(fields)
    return TraceRecord(**base)  # type: ignore[arg-type]


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_writes_in_batches_and_close_flushes(tmp_path: Path) -> None:
    store = SqlStore(SqliteDriver(tmp_path / "db.sqlite"))
    writer = BatchingWriter(store, max_batch=100)
    await writer.start()
    records = [trace(n=i) for i in range(1000)]
    for i, record in enumerate(records):
        writer.submit(record)
        if i % 10 == 0:
            writer.submit_op(IdentityUpsert("u", float(i), display_name=f"name {i}"))
    await writer.close()  # no explicit flush: shutdown must write everything
    assert await store.count_traces() == 1000
    assert writer.written_traces == 1000 and writer.dropped == 0
    assert writer.batches < 200  # batched, not one transaction per trace
    ident = await store.get_identity("u")
    assert ident is not None and ident.display_name == "name 990"  # applied in order
    await store.close()


async def test_flush_makes_submitted_items_readable(tmp_path: Path) -> None:
    store = SqlStore(SqliteDriver(tmp_path / "db.sqlite"))
    writer = BatchingWriter(store)
    await writer.start()
    record = trace()
    writer.submit(record)
    assert await writer.flush(2.0)
    assert await store.get_trace(record.id) is not None
    await writer.close()
    await store.close()


async def test_a_bad_item_is_dropped_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqlStore(SqliteDriver(tmp_path / "db.sqlite"))
    writer = BatchingWriter(store)
    await writer.start()
    good1, bad, good2 = trace(), trace(name=None), trace()  # name is NOT NULL
    with caplog.at_level(logging.ERROR, "imagegate"):
        for r in (good1, bad, good2):
            writer.submit(r)
        assert await writer.flush(5.0)
    assert await store.get_trace(good1.id) is not None
    assert await store.get_trace(good2.id) is not None
    assert await store.get_trace(bad.id) is None
    assert (writer.dropped_traces, writer.written_traces) == (1, 2)
    assert any("rejected by the store" in r.getMessage() for r in caplog.records)
    await writer.close()
    await store.close()


async def test_database_down_buffer_is_bounded_and_drops_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = SqlStore(
        PostgresDriver(f"postgresql://postgres@127.0.0.1:{closed_port()}/x", connect_timeout_s=0.5)
    )
    writer = BatchingWriter(
        store, max_buffer=10, retry_base_s=0.01, retry_max_s=0.05, close_timeout_s=0.3
    )
    await writer.start()
    with caplog.at_level(logging.WARNING, "imagegate"):
        for _ in range(15):
            writer.submit(trace())
        assert not await writer.flush(0.3)  # nothing can land
        assert writer.pending == 10 and writer.dropped_traces == 5
        assert writer.failures >= 1 and not writer.available
        await writer.close()
    assert writer.dropped_traces == 15 and writer.pending == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("buffer full" in m for m in messages)
    assert any("unwritten at shutdown" in m and "15 dropped in total" in m for m in messages)
    writer.submit(trace())  # after close: counted, never raises
    assert writer.dropped_traces == 16
    await store.close()
