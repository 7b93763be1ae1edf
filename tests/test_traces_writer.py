"""The batching writer: batches in order, a byte-bounded buffer that spills to disk and
replays in order (also after a restart), bad items isolated in the poison file, nothing
dropped."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from live import free_port

from imagegate.store import IdentityUpsert, SqlStore, StoreUnavailable, ThreadUpsert
from imagegate.store.postgres import PostgresDriver
from imagegate.store.sqlite import SqliteDriver
from imagegate.telemetry import spill
from imagegate.telemetry.trace import TraceRecord, new_trace_id
from imagegate.telemetry.writer import BatchingWriter


def trace(**fields: object) -> TraceRecord:
    base: dict[str, object] = {"id": new_trace_id(), "operation": "generations", "name": "t"}
    base.update(fields)
    return TraceRecord(**base)  # type: ignore[arg-type]


async def test_writes_in_batches_and_close_flushes(tmp_path: Path) -> None:
    store = SqlStore(SqliteDriver(tmp_path / "db.sqlite"))
    writer = BatchingWriter(store, data_dir=tmp_path, max_batch=100)
    await writer.start()
    records = [trace(n=i) for i in range(1000)]
    for i, record in enumerate(records):
        writer.submit(record)
        if i % 10 == 0:
            writer.submit_op(IdentityUpsert("u", float(i), display_name=f"name {i}"))
    await writer.close()  # no explicit flush: shutdown must write everything
    assert await store.count_traces("default") == 1000
    assert writer.written_traces == 1000 and writer.dropped == 0
    assert writer.batches < 200  # batched, not one transaction per trace
    ident = await store.get_identity("default", "u")
    assert ident is not None and ident.display_name == "name 990"  # applied in order
    await store.close()


async def test_flush_makes_submitted_items_readable(tmp_path: Path) -> None:
    store = SqlStore(SqliteDriver(tmp_path / "db.sqlite"))
    writer = BatchingWriter(store)
    await writer.start()
    record = trace()
    writer.submit(record)
    assert await writer.flush(2.0)
    assert await store.get_trace("default", record.id) is not None
    await writer.close()
    await store.close()


class Recorder:
    """A ``BatchStore`` double: down until ``up`` is set, records what it wrote, in order,
    and rejects (as a database would reject bad data) items whose name is in ``reject``."""

    def __init__(self, reject: frozenset[str] = frozenset()) -> None:
        self.up = False
        self.reject = reject
        self.written: list[str] = []
        self.attempts = 0
        self.went_down = asyncio.Event()

    async def write_batch(self, items: list[object]) -> None:
        self.attempts += 1
        if not self.up:
            self.went_down.set()
            raise StoreUnavailable("down")
        if any(getattr(i, "name", None) in self.reject for i in items):
            raise ValueError("rejected")
        self.written += [str(getattr(i, "id", "")) for i in items]


def spill_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "spill").glob("spill-*"))


def poison_lines(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "spill" / spill.POISON_FILE
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``condition`` (bounded), yielding to the writer in between."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_a_bad_item_goes_to_the_poison_file_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqlStore(SqliteDriver(tmp_path / "db.sqlite"))
    writer = BatchingWriter(store, data_dir=tmp_path)
    await writer.start()
    good1, good2 = trace(), trace()
    no_name, too_big = trace(name=None), trace(n=2**70)  # NOT NULL; beyond SQLite's INTEGER
    with caplog.at_level(logging.ERROR, "imagegate"):
        for r in (good1, no_name, too_big, good2):
            writer.submit(r)
        assert await writer.flush(5.0)
    assert await store.get_trace("default", good1.id) is not None
    assert await store.get_trace("default", good2.id) is not None
    assert await store.get_trace("default", no_name.id) is None
    assert (writer.poisoned, writer.written_traces, writer.dropped) == (2, 2, 0)
    poison = poison_lines(tmp_path)
    assert [(p["t"], p["v"]["id"]) for p in poison] == [
        ("trace", no_name.id),
        ("trace", too_big.id),
    ]
    assert "NOT NULL" in poison[0]["error"] and poison[1]["v"]["n"] == 2**70
    logged = [r.getMessage() for r in caplog.records if "poison" in r.getMessage()]
    assert len(logged) == 2  # once each
    await writer.close()
    await store.close()


async def test_outage_spills_past_the_byte_budget_and_replays_in_submission_order(
    tmp_path: Path,
) -> None:
    target = Recorder()
    writer = BatchingWriter(
        target,
        data_dir=tmp_path,
        max_batch=50,
        max_buffer_bytes=40_000,
        retry_base_s=0.001,
        retry_max_s=0.01,
        spill_after_s=60,
    )
    await writer.start()
    ids: list[str] = []
    for i in range(2000):  # ~1 KB each: ~2 MB against a 40 KB budget
        record = trace(name=f"t{i}")
        ids.append(record.id)
        writer.submit(record)
        if i % 100 == 0:
            await asyncio.sleep(0)  # let the spiller run now and then
    await wait_for(  # no append still under way: every item is in memory or on disk
        lambda: (
            writer.stats()["buffered_bytes"] <= 40_000
            and writer.spilled == writer.on_disk
            and writer.spilled + writer.buffered == 2000
        )
    )
    stats = writer.stats()
    assert stats["spilled"] > 1500 and stats["spill_pending"] == stats["spilled"]
    assert stats["pending"] == 2000 and stats["dropped"] == 0
    assert spill_files(tmp_path)
    target.up = True
    assert await writer.flush(10.0)
    assert target.written == ids  # memory, disk, memory: one order, the submission order
    assert writer.replayed == writer.spilled and writer.dropped == 0
    await writer.close()
    assert spill_files(tmp_path) == []  # deleted once everything in them was written


async def test_long_outage_moves_everything_to_disk(tmp_path: Path) -> None:
    target = Recorder()
    writer = BatchingWriter(
        target,
        data_dir=tmp_path,
        max_batch=10,
        retry_base_s=0.001,
        retry_max_s=0.005,
        spill_after_s=0.0,
    )
    await writer.start()
    records = [trace() for _ in range(30)]
    for r in records:
        writer.submit(r)
    await wait_for(lambda: writer.buffered == 0 and writer.on_disk == 30)
    assert writer.stats()["buffered_bytes"] == 0  # a crash now would lose nothing
    target.up = True
    assert await writer.flush(10.0)
    assert target.written == [r.id for r in records]
    await writer.close()


async def test_close_while_down_spills_and_a_new_writer_replays(tmp_path: Path) -> None:
    down = SqlStore(
        PostgresDriver(f"postgresql://postgres@127.0.0.1:{free_port()}/x", connect_timeout_s=0.5)
    )
    writer = BatchingWriter(down, data_dir=tmp_path, retry_base_s=0.01, close_timeout_s=5.0)
    await writer.start()
    records = [trace(name=f"r{i}") for i in range(300)]
    for i, r in enumerate(records):
        writer.submit(r)
        writer.submit_op(IdentityUpsert("u", float(i), display_name=f"name {i}"))
        writer.submit_op(ThreadUpsert("th", float(i), [f"tag{i % 3}"]))
    await writer.close()
    assert writer.dropped == 0 and writer.spilled == 900
    assert len(spill_files(tmp_path)) >= 1
    writer.submit(late := trace(name="late"))  # after close: spilled, not dropped
    assert writer.dropped == 0
    await down.close()

    store = SqlStore(SqliteDriver(tmp_path / "db.sqlite"))
    second = BatchingWriter(store, data_dir=tmp_path)
    await second.start()
    second.submit(new := trace(name="new"))
    await wait_for(lambda: second.pending == 0)
    assert await store.count_traces("default") == 302
    assert await store.get_trace("default", late.id) is not None and await store.get_trace(
        "default", new.id
    )
    ident = await store.get_identity("default", "u")
    assert ident is not None and ident.display_name == "name 299"  # replayed in order
    thread = await store.get_thread("default", "th")
    assert thread is not None and thread.tags == ["tag0", "tag1", "tag2"]
    assert second.replayed == 901 and second.dropped == 0
    await second.close()
    assert spill_files(tmp_path) == []
    await store.close()


async def test_replaying_a_file_twice_duplicates_nothing(tmp_path: Path) -> None:
    """A crash mid-replay leaves the file; replaying it again must neither lose nor duplicate."""
    records = [trace(name=f"r{i}") for i in range(50)]
    segment = spill.Segment.create(tmp_path / "spill", 1, 0)
    segment.append([spill.encode(r) for r in records])
    segment.append([spill.encode(IdentityUpsert("u", 1.0, display_name="Ada"))])
    segment.release()
    (copy,) = spill_files(tmp_path)
    saved = copy.read_bytes()
    store = SqlStore(SqliteDriver(tmp_path / "db.sqlite"))
    for _ in range(2):
        writer = BatchingWriter(store, data_dir=tmp_path)
        await writer.start()
        await wait_for(lambda w=writer: w.pending == 0)  # type: ignore[misc]
        await writer.close()
        assert spill_files(tmp_path) == []
        copy.write_bytes(saved)  # as if the first replay had crashed before deleting it
    assert await store.count_traces("default") == 50
    ident = await store.get_identity("default", "u")
    assert ident is not None and ident.display_name == "Ada"
    await store.close()


async def test_a_torn_spill_line_goes_to_the_poison_file(tmp_path: Path) -> None:
    """A crash mid-append leaves half a line: kept aside, and the rest is replayed."""
    good = trace()
    segment = spill.Segment.create(tmp_path / "spill", 1, 0)
    segment.append([spill.encode(good), spill.encode(trace())[:40]])
    segment.release()
    target = Recorder()
    target.up = True
    writer = BatchingWriter(target, data_dir=tmp_path)
    await writer.start()
    await wait_for(lambda: writer.pending == 0)
    assert target.written == [good.id] and writer.poisoned == 1
    (poison,) = poison_lines(tmp_path)
    assert poison["t"] == "raw" and "not a spill line" in poison["error"]
    await writer.close()


async def test_poison_rejected_by_a_target_is_kept_with_its_error(tmp_path: Path) -> None:
    target = Recorder(reject=frozenset({"bad"}))
    target.up = True
    writer = BatchingWriter(target, data_dir=tmp_path)
    await writer.start()
    records = [trace(name="ok1"), trace(name="bad", metadata={"k": "\x00"}), trace(name="ok2")]
    for r in records:
        writer.submit(r)
    assert await writer.flush(5.0)
    assert target.written == [records[0].id, records[2].id]
    (poison,) = poison_lines(tmp_path)
    assert poison["v"]["id"] == records[1].id and "rejected" in poison["error"]
    assert poison["v"]["metadata"] == {"k": "\x00"}  # kept as it was
    await writer.close()


def test_a_live_owners_file_is_never_claimed(tmp_path: Path) -> None:
    directory = tmp_path / "spill"
    live = spill.Segment.create(directory, 1, 0)  # this "process" still holds it
    live.append([spill.encode(trace())])
    dead = spill.Segment.create(directory, 1, 1)
    dead.append([spill.encode(trace()), spill.encode(trace())])
    dead.release()  # its owner is gone
    first = spill.claim_leftovers(directory, "a-1")
    assert [(s.own, s.unread) for s in first] == [(False, 2)]
    assert first[0].path.name.endswith(".a-1.replay")
    assert spill.claim_leftovers(directory, "b-2") == []  # held by the first claimer
    for s in first:
        s.release()
    second = spill.claim_leftovers(directory, "b-2")  # released unfinished: claimable again
    assert [s.unread for s in second] == [2]
    for s in second:
        s.release()
    live.release()


CLAIMER = """
import sys, time
from pathlib import Path
from imagegate.telemetry import spill
directory, tag, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
while time.time() < start:
    pass
claimed = spill.claim_leftovers(directory, tag)
print(" ".join(s.path.name.split(".")[0] for s in claimed), flush=True)
sys.stdin.read()  # keep the locks until told to exit
"""


def test_two_processes_never_claim_the_same_file(tmp_path: Path) -> None:
    directory = tmp_path / "spill"
    stems = set()
    for i in range(40):
        segment = spill.Segment.create(directory, 1, i)
        segment.append([spill.encode(trace())])
        stems.add(segment.path.name.split(".")[0])
        segment.release()
    start = time.time() + 1.0  # both start claiming at the same moment
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(directory), f"p-{n}", str(start)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    try:
        outputs = [p.stdout.readline().split() for p in procs if p.stdout is not None]
    finally:
        for p in procs:
            p.communicate("", timeout=10)
    assert len(outputs[0]) + len(outputs[1]) == 40
    assert set(outputs[0]) | set(outputs[1]) == stems  # each exactly once


async def test_without_a_data_dir_overflow_is_dropped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = Recorder()
    writer = BatchingWriter(
        target, max_buffer_bytes=5_000, retry_base_s=0.001, retry_max_s=0.005, close_timeout_s=0.2
    )
    await writer.start()
    with caplog.at_level(logging.WARNING, "imagegate"):
        for _ in range(15):
            writer.submit(trace())
        await wait_for(lambda: writer.dropped > 0)
        assert writer.stats()["buffered_bytes"] <= 5_000
        await writer.close()
    assert writer.dropped == 15 and writer.pending == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("buffer full" in m for m in messages)
    assert any("unwritten at shutdown" in m for m in messages)


async def test_submit_never_raises_on_a_malformed_item(tmp_path: Path) -> None:
    writer = BatchingWriter(Recorder(), data_dir=tmp_path)
    writer.submit(trace(attempts=None, name=None))  # no running writer needed
    writer.submit_op(object())
    assert writer.buffered == 2
