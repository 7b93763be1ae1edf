"""The batching writer: traces and per-request upserts reach the database off the hot path.

``submit`` is a synchronous append to an in-memory buffer; one background task drains it in
batches (one transaction each, in submission order). When the database is down the batch is
kept and retried with capped backoff, so everything waits in the buffer until it returns. The
buffer is bounded: past ``max_buffer`` new items are dropped, counted and logged (a burst
must not exhaust memory). ``close`` flushes within ``close_timeout_s``; whatever is still
unwritten then is counted as dropped and logged.

    writer = BatchingWriter(store)
    await writer.start()
    writer.submit(trace)            # never blocks, never raises
    await writer.close()            # graceful shutdown: flushes
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from typing import Any, Protocol

from ..store.base import StoreUnavailable
from .trace import TraceRecord

log = logging.getLogger("imagegate.traces")


class BatchTarget(Protocol):
    async def write_batch(self, items: list[Any]) -> None: ...


class BatchingWriter:
    """A ``TraceSink`` that also carries identity/thread upserts (``submit_op``)."""

    def __init__(
        self,
        store: BatchTarget,
        *,
        max_batch: int = 256,
        max_buffer: int = 50_000,
        retry_base_s: float = 0.05,
        retry_max_s: float = 1.0,
        close_timeout_s: float = 10.0,
        log_every_s: float = 10.0,
        linger_s: float = 0.02,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.close_timeout_s = close_timeout_s
        self.log_every_s = log_every_s
        self.linger_s = linger_s  # gather a few traces per transaction under load
        self._buffer: deque[Any] = deque()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._closed = False
        self._submitted = 0  # items accepted into the buffer, ever
        self._settled = 0  # items written or given up on, ever
        self._last_log: dict[str, float] = {}
        self.written = 0
        self.written_traces = 0
        self.dropped = 0
        self.dropped_traces = 0
        self.failures = 0
        self.batches = 0
        self.available = True

    # --- the hot path ------------------------------------------------------------------
    def submit(self, record: TraceRecord) -> None:
        self._put(record)

    def submit_op(self, item: Any) -> None:
        self._put(item)

    def _put(self, item: Any) -> None:
        if self._closed or len(self._buffer) >= self.max_buffer:
            self._drop([item], "closed" if self._closed else "buffer full")
            return
        self._buffer.append(item)
        self._submitted += 1
        self._wake.set()

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = self._closed = False
            self._task = asyncio.create_task(self._run(), name="imagegate-trace-writer")

    async def close(self) -> None:
        """Flush what is buffered (bounded by ``close_timeout_s``), then stop."""
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
        self._closed = True
        if self._buffer:
            left = list(self._buffer)
            self._buffer.clear()
            self._settle(len(left))
            self._drop(left, "unwritten at shutdown", force_log=True)

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
        return len(self._buffer)

    def stats(self) -> dict[str, Any]:
        return {
            "pending": self.pending, "written": self.written,
            "written_traces": self.written_traces, "dropped": self.dropped,
            "dropped_traces": self.dropped_traces, "failures": self.failures,
            "batches": self.batches, "available": self.available,
        }  # fmt: skip

    # --- the background task -------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while True:
            if not self._buffer:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.linger_s and len(self._buffer) < self.max_batch and not self._stopping:
                await asyncio.sleep(self.linger_s)
            batch = list(itertools.islice(self._buffer, self.max_batch))
            try:
                await self._write(batch)
            except StoreUnavailable as exc:
                self.failures += 1
                self.available = False
                self._warn("down", f"store unavailable, {self.pending} item(s) waiting: {exc}")
                delay = min(self.retry_max_s, self.retry_base_s * 2**attempt)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            if not self.available:
                log.info("store available again; resuming writes (%d pending)", self.pending)
            self.available = True
            attempt = 0

    async def _write(self, batch: list[Any]) -> None:
        try:
            await self.store.write_batch(batch)
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("batch of %d failed; retrying its items one by one", len(batch))
            await self._write_singly(len(batch))
            return
        self._pop(len(batch), written=True)

    async def _write_singly(self, count: int) -> None:
        """Isolate the item(s) that cannot be written; drop only those."""
        for _ in range(count):
            item = self._buffer[0]
            try:
                await self.store.write_batch([item])
            except StoreUnavailable:
                raise
            except Exception as exc:
                self._pop(1, written=False)
                self._drop([item], f"rejected by the store: {exc!r}", force_log=True)
            else:
                self._pop(1, written=True)

    def _pop(self, count: int, *, written: bool) -> None:
        for _ in range(count):
            item = self._buffer.popleft()
            if written:
                self.written += 1
                if isinstance(item, TraceRecord):
                    self.written_traces += 1
        if written:
            self.batches += 1
        self._settle(count)

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
