"""The writer's other half: where items go when they are not written to the store now.

Past the memory budget the oldest items move to spill files (``spill.py``); a long outage or
a shutdown moves everything there; a restart claims what a dead process left; an item the
store refuses on its own goes to the poison file. Without a spill directory the same events
drop items instead, counted and logged. A mixin of ``BatchingWriter`` (``writer.py``), which
owns the state declared below.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..store import TraceRecord
from . import spill

log = logging.getLogger("imagegate.traces")

SPILL_CHUNK = 2048  # items per spill append (one thread hop, one write)


class Spilling:
    """Spill, replay, poison and drop; see the module docstring."""

    spill_dir: Path | None
    max_buffer_bytes: int
    log_every_s: float
    spilled: int
    poisoned: int
    dropped: int
    dropped_traces: int
    _buffer: deque[tuple[Any, int]]
    _bytes: int
    _popped: int
    _disk: deque[spill.Segment]
    _disk_lock: asyncio.Lock
    _inflight: list[Any]
    _inflight_seq: int
    _inflight_seg: spill.Segment | None
    _inflight_count: int
    _spill_wake: asyncio.Event
    _spill_stop: bool
    _wake: asyncio.Event
    _progress: asyncio.Event
    _run_ns: int
    _tag: str
    _settled: int
    _last_log: dict[str, float]

    def _pop_memory(self) -> Any:
        item, size = self._buffer.popleft()
        self._bytes -= size
        self._popped += 1
        return item

    # --- spilling ------------------------------------------------------------------------
    async def _spill_loop(self) -> None:
        """Keep memory under budget: move the oldest items to disk when it is exceeded."""
        while not self._spill_stop:
            await self._spill_wake.wait()
            self._spill_wake.clear()
            if self._bytes > self.max_buffer_bytes:
                if self.spill_dir is None:
                    self._shed()
                else:
                    await self._spill_memory(self.max_buffer_bytes // 2)

    async def _spill_memory(self, target_bytes: int) -> None:
        """Move the oldest in-memory items to the newest own spill file (order is kept)."""
        assert self.spill_dir is not None
        async with self._disk_lock:
            while self._buffer and self._bytes > target_bytes:
                tail = self._disk[-1] if self._disk else None
                if tail is None or not tail.own or tail.closed:
                    tail = await self._new_segment(self._popped)
                    self._disk.append(tail)
                chunk = [self._pop_memory() for _ in range(min(SPILL_CHUNK, len(self._buffer)))]
                await self._append(tail, chunk)

    async def _spill_everything(self) -> None:
        """The batch in flight (if it came from memory) and all of memory, to disk, in order."""
        async with self._disk_lock:
            if self._inflight and self._inflight_seg is None:
                segment = await self._new_segment(self._inflight_seq)
                await self._append(segment, self._inflight)
                self._disk.appendleft(segment)  # older than anything already spilled
                self._settle(self._inflight_count - len(self._inflight))  # written one by one
                self._inflight, self._inflight_count = [], 0
            elif self._inflight_seg is not None:  # still in its file: read again later
                self._inflight, self._inflight_seg, self._inflight_count = [], None, 0
        await self._spill_memory(0)

    async def _new_segment(self, first_seq: int) -> spill.Segment:
        assert self.spill_dir is not None
        return await asyncio.to_thread(
            spill.Segment.create, self.spill_dir, self._run_ns, first_seq
        )

    async def _append(self, segment: spill.Segment, items: list[Any]) -> None:
        def work() -> None:
            segment.append([spill.encode(item) for item in items])

        try:
            await asyncio.to_thread(work)
        except OSError as exc:  # the disk too: nothing left to keep them in
            self._drop(items, f"spill file unwritable: {exc!r}", force_log=True)
            self._settle(len(items))
            return
        self.spilled += len(items)

    def _after_close(self, item: Any) -> None:
        """A late submission (a request finishing after shutdown): spill it synchronously."""
        if self.spill_dir is None:
            self._drop([item], "closed")
            return
        try:
            segment = spill.Segment.create(self.spill_dir, self._run_ns, 10**11 + self._popped)
            segment.append([spill.encode(item)])
            segment.release()
        except OSError as exc:
            self._drop([item], f"closed and spill file unwritable: {exc!r}", force_log=True)
            return
        self.spilled += 1

    def _shed(self) -> None:
        """No spill directory: drop the oldest items past the budget (counted, logged)."""
        dropped: list[Any] = []
        while self._buffer and self._bytes > self.max_buffer_bytes:
            dropped.append(self._pop_memory())
        self._settle(len(dropped))
        self._drop(dropped, "buffer full")

    async def _claim_leftovers(self) -> None:
        assert self.spill_dir is not None
        try:
            found = await asyncio.to_thread(spill.claim_leftovers, self.spill_dir, self._tag)
        except OSError as exc:
            log.error("cannot read spill directory %s: %r", self.spill_dir, exc)
            return
        if found:
            async with self._disk_lock:
                self._disk.extend(found)
            count = sum(s.unread for s in found)
            log.info("replaying %d spilled item(s) from %d file(s)", count, len(found))
            self._wake.set()

    async def _poison(self, rejected: list[tuple[Any, str]]) -> None:
        """Items the store refuses on their own: kept in the poison file, logged once each."""
        self.poisoned += len(rejected)
        for item, error in rejected:
            what = getattr(item, "id", None) or type(item).__name__
            log.error("item %s rejected by the store, kept in the poison file: %s", what, error)
        if self.spill_dir is None:
            self._drop([item for item, _ in rejected], "rejected by the store", force_log=True)
            return
        records = [spill.poison_record(item, error) for item, error in rejected]
        try:
            await asyncio.to_thread(spill.append_poison, self.spill_dir, records)
        except OSError as exc:
            self._drop([i for i, _ in rejected], f"poison file unwritable: {exc!r}", force_log=True)

    # --- accounting ----------------------------------------------------------------------
    def _settle(self, count: int) -> None:
        self._settled += count
        self._progress.set()

    def _drop(self, items: list[Any], why: str, *, force_log: bool = False) -> None:
        traces = sum(isinstance(i, TraceRecord) for i in items)
        self.dropped += len(items)
        self.dropped_traces += traces
        message = (
            f"dropped {len(items)} item(s) ({traces} trace(s)): {why}; "
            f"{self.dropped} dropped in total"
        )
        if force_log:
            log.error(message)
        else:
            self._warn("drop", message)

    def _warn(self, key: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -1e9) >= self.log_every_s:
            self._last_log[key] = now
            log.warning(message)
