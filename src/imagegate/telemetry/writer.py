"""The batching writer: traces and per-request upserts reach the database off the hot path,
and none is ever dropped.

``submit`` is a synchronous append to an in-memory buffer (plus a cheap size estimate); one
background task writes batches (one transaction each, in submission order). The buffer is
bounded in bytes: past ``max_buffer_bytes`` its oldest items move to an append-only spill
file under ``<data_dir>/spill/`` (``spill.py``), written in a thread (that half of the
writer is ``spilling.py``). Items always leave in submission order: the batch being
written, then the spill files, then memory.

Failures are of two kinds. ``StoreUnavailable`` (the driver's verdict: connection refused or
lost, authentication failure, read-only replica, shutdown, serialization failure, database
locked, disk full) keeps the batch and retries with capped backoff; after ``spill_after_s``
down, memory is moved to disk so a crash loses nothing. Any other error retries the batch one
item at a time: an item that still fails alone is a poison item, appended to
``spill/poison.jsonl`` with its error and logged once. ``close`` flushes within
``close_timeout_s`` and spills whatever is still unwritten; the next ``start`` on the same
``data_dir`` (or any other process sharing it, once the owner is gone) replays it first.

Without a ``data_dir`` nothing can be spilled: past the budget, after the close timeout and
for poison items the old rule applies (dropped, counted, logged).

    writer = BatchingWriter(store, data_dir=".imagegate")
    await writer.start()
    writer.submit(trace)            # never blocks, never raises
    await writer.close()            # graceful shutdown: flushes, spills the rest
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..ids import random_bits
from ..store import BatchStore, IdentityUpsert, StoreUnavailable, ThreadUpsert, TraceRecord
from . import spill
from .spilling import Spilling

log = logging.getLogger("imagegate.traces")


def estimate(item: Any) -> int:
    """Rough bytes an item costs, from lengths already known: no serialisation, no walk."""
    try:
        if type(item) is TraceRecord:
            return trace_size(item)
        if type(item) is IdentityUpsert:
            return 256 + 128 * len(item.metadata or ()) + 32 * len(item.tags or ())
        if type(item) is ThreadUpsert:
            return 128 + 32 * len(item.tags)
    except TypeError:  # a malformed item (None where a list belongs): the store will say
        pass
    return 1024


def trace_size(t: TraceRecord) -> int:
    """A trace's rough size: fixed fields plus its open-ended strings and lists."""
    return (
        768
        + len(t.name)
        + len(t.error_message or "")
        + 192 * len(t.attempts)
        + 96 * len(t.metadata)
    )


class BatchingWriter(Spilling):
    """A ``TraceSink`` that also carries identity/thread upserts (``submit_op``)."""

    def __init__(
        self,
        store: BatchStore,
        *,
        data_dir: str | Path | None = None,
        max_batch: int = 256,
        max_buffer_bytes: int = 64 << 20,
        spill_after_s: float = 5.0,
        retry_base_s: float = 0.05,
        retry_max_s: float = 1.0,
        close_timeout_s: float = 10.0,
        log_every_s: float = 10.0,
        linger_s: float = 0.02,
    ) -> None:
        self.store = store
        self.spill_dir = Path(data_dir) / "spill" if data_dir is not None else None
        self.max_batch = max_batch
        self.max_buffer_bytes = max_buffer_bytes
        self.spill_after_s = spill_after_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.close_timeout_s = close_timeout_s
        self.log_every_s = log_every_s
        self.linger_s = linger_s  # gather a few traces per transaction under load
        self._buffer: deque[tuple[Any, int]] = deque()  # (item, estimated bytes), newest last
        self._bytes = 0
        self._popped = 0  # submission number of _buffer[0]
        self._disk: deque[spill.Segment] = deque()  # items older than all of _buffer
        self._disk_lock = asyncio.Lock()  # one spill-file operation at a time
        self._inflight: list[Any] = []  # the batch being written: older than all of _disk
        self._inflight_seq = 0  # submission number of its first item (when from memory)
        self._inflight_seg: spill.Segment | None = None  # or the segment it was read from
        self._inflight_end = 0
        self._inflight_count = 0
        self._wake = asyncio.Event()
        self._spill_wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._spiller: asyncio.Task[None] | None = None
        self._stopping = False
        self._spill_stop = False
        self._closed = False
        self._run_ns = time.time_ns()
        self._tag = ""  # pid-random of the process that started us (set in start)
        self._submitted = 0  # items accepted, ever
        self._settled = 0  # of those, items written or set aside as poison
        self._last_log: dict[str, float] = {}
        self.written = 0
        self.written_traces = 0
        self.dropped = 0
        self.dropped_traces = 0
        self.spilled = 0
        self.replayed = 0
        self.poisoned = 0
        self.failures = 0
        self.batches = 0
        self.available = True

    # --- the hot path ------------------------------------------------------------------
    def submit(self, record: TraceRecord) -> None:
        try:
            size = trace_size(record)
        except TypeError:
            size = 1024
        self._put(record, size)

    def submit_op(self, item: Any) -> None:
        self._put(item, estimate(item))

    def _put(self, item: Any, size: int) -> None:
        if self._closed:
            self._after_close(item)
            return
        self._buffer.append((item, size))
        self._bytes += size
        self._submitted += 1
        if self._bytes > self.max_buffer_bytes:
            self._spill_wake.set()
        self._wake.set()

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping = self._spill_stop = self._closed = False
        self._tag = f"{os.getpid()}-{random_bits(32):08x}"  # this process (workers fork)
        if self.spill_dir is not None:
            await self._claim_leftovers()
        self._task = asyncio.create_task(self._run(), name="imagegate-trace-writer")
        self._spiller = asyncio.create_task(self._spill_loop(), name="imagegate-trace-spill")

    async def close(self) -> None:
        """Flush (bounded by ``close_timeout_s``), then spill what is left, then stop."""
        if self._closed:
            return
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=self.close_timeout_s)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._spill_stop = True
        self._spill_wake.set()
        if self._spiller is not None:
            await self._spiller  # never cancelled: it may be mid-append
        self._closed = True
        if self.spill_dir is None:
            left = [*self._inflight, *(item for item, _ in self._buffer)]
            self._inflight.clear()
            self._buffer.clear()
            self._bytes = 0
            if left:
                self._settle(len(left))
                self._drop(left, "unwritten at shutdown", force_log=True)
            return
        await self._spill_everything()
        async with self._disk_lock:
            segments = list(self._disk)
            self._disk.clear()
            kept = sum(s.unread for s in segments)
            for segment in segments:
                await asyncio.to_thread(segment.release)
        if kept:
            log.warning("%d item(s) unwritten at shutdown kept in %s", kept, self.spill_dir)

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything submitted so far is settled; False on timeout."""
        target = self._submitted
        deadline = time.monotonic() + timeout_s
        while self._settled < target:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._task is None or self._task.done():
                return self._settled >= target
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout=remaining)
        return True

    @property
    def pending(self) -> int:
        """Items not yet in the store: in memory, being written, or in spill files."""
        return self.buffered + self.on_disk

    @property
    def buffered(self) -> int:
        inflight = 0 if self._inflight_seg is not None else len(self._inflight)
        return len(self._buffer) + inflight

    @property
    def on_disk(self) -> int:
        return sum(s.unread for s in self._disk)

    def stats(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "buffered": self.buffered,
            "buffered_bytes": self._bytes,
            "spill_pending": self.on_disk,
            "written": self.written,
            "written_traces": self.written_traces,
            "dropped": self.dropped,
            "dropped_traces": self.dropped_traces,
            "spilled": self.spilled,
            "replayed": self.replayed,
            "poison": self.poisoned,
            "failures": self.failures,
            "batches": self.batches,
            "available": self.available,
        }

    # --- the writing task ----------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        down_since: float | None = None
        while True:
            if not self._inflight:
                if (
                    self.linger_s
                    and not self._disk
                    and not self._stopping
                    and 0 < len(self._buffer) < self.max_batch
                ):
                    await asyncio.sleep(self.linger_s)
                if not await self._take():
                    if self._stopping:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
            try:
                await self._write_inflight()
            except StoreUnavailable as exc:
                self.failures += 1
                self.available = False
                self._warn("down", f"store unavailable, {self.pending} item(s) waiting: {exc}")
                if self._stopping and self.spill_dir is not None:
                    return  # shutting down: close() spills the rest, the next start replays
                now = time.monotonic()
                down_since = down_since if down_since is not None else now
                if self.spill_dir is not None and now - down_since >= self.spill_after_s:
                    # a long outage: keep it all on disk (shielded: a cancel mid-append
                    # would leave a half-registered segment behind)
                    await asyncio.shield(self._spill_everything())
                await asyncio.sleep(min(self.retry_max_s, self.retry_base_s * 2**attempt))
                attempt += 1
                continue
            if not self.available:
                log.info("store available again; resuming writes (%d pending)", self.pending)
                if self.spill_dir is not None:
                    await self._claim_leftovers()  # a worker that died meanwhile
            self.available = True
            attempt = 0
            down_since = None

    async def _take(self) -> bool:
        """Load the next batch: from the oldest spill file, else from memory."""
        async with self._disk_lock:
            while self._disk:
                segment = self._disk[0]
                if segment.exhausted:
                    self._disk.popleft()
                    await asyncio.to_thread(segment.release)
                    continue
                items, bad, end, count = await asyncio.to_thread(
                    spill.read_items, segment, self.max_batch
                )
                if not count:  # shorter than counted (cut short): nothing more to read
                    segment.commit(segment.size, segment.unread)
                    continue
                if bad:
                    await self._poison(bad)
                self._inflight = items
                self._inflight_seg, self._inflight_end = segment, end
                self._inflight_count = count
                if not items:
                    self._finish()
                    continue
                return True
            if not self._buffer:
                return False
            count = min(self.max_batch, len(self._buffer))
            self._inflight_seq = self._popped
            self._inflight = [self._pop_memory() for _ in range(count)]
            self._inflight_seg = None
            self._inflight_count = count
            return True

    async def _write_inflight(self) -> None:
        try:
            await self.store.write_batch(self._inflight)
        except StoreUnavailable:
            raise
        except Exception as exc:
            log.warning(
                "batch of %d failed (%r); writing its items one by one", len(self._inflight), exc
            )
            await self._write_singly()
        else:
            self._count_written(self._inflight)
            self._inflight = []
        self.batches += 1
        self._finish()

    async def _write_singly(self) -> None:
        """Isolate the item(s) that cannot be written; set only those aside."""
        while self._inflight:
            item = self._inflight[0]
            try:
                await self.store.write_batch([item])
            except StoreUnavailable:
                raise
            except Exception as exc:
                self._inflight.pop(0)
                await self._poison([(item, repr(exc))])
            else:
                self._inflight.pop(0)
                self._count_written([item])

    def _count_written(self, items: list[Any]) -> None:
        self.written += len(items)
        self.written_traces += sum(type(i) is TraceRecord for i in items)
        if self._inflight_seg is not None:
            self.replayed += len(items)

    def _finish(self) -> None:
        """The whole batch is in the store (or in the poison file): advance past it."""
        segment, count = self._inflight_seg, self._inflight_count
        self._inflight, self._inflight_seg, self._inflight_count = [], None, 0
        if segment is None:
            self._settle(count)
        else:
            segment.commit(self._inflight_end, count)
            if segment.own:
                self._settle(count)
