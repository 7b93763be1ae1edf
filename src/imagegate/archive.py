"""Archive copies of images answered in base64, written by a few long-lived threads.

A caller who asked for ``b64_json`` is answered straight from the provider's base64; the
image still goes to the blob store (traces keep its key), but nobody waits for it. Doing that
with a task and ``asyncio.to_thread`` per image cost ~0.5 ms of CPU per small request on the
benchmark machine — a task, a thread hand-off each way, and the GIL ping-pong between them —
as much as the rest of the request. Here the event loop only appends to a queue; ``THREADS``
threads take whatever has accumulated, decode, hash and write each image, and wake the loop
once per batch to resolve the requests' futures (which the gateway waits on before it submits
their traces, so a trace always names its blobs).

Every blob store writes this way (``BlobStore.put_sync``; the store says how many threads
suit it). Bounded: past ``MAX_QUEUED_BYTES`` waiting, ``submit`` makes its caller wait for its
own images.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("imagegate.archive")

THREADS = 2
MAX_QUEUED_BYTES = 256 * 1024 * 1024
BATCH = 64  # jobs taken at once by one thread


class Job:
    """One request's images: ``work()`` runs on an archive thread, ``future`` on the loop."""

    __slots__ = ("future", "size", "work")

    def __init__(self, work: Callable[[], None], size: int, future: asyncio.Future[None]) -> None:
        self.work, self.size, self.future = work, size, future


class ArchiveWriter:
    """Runs ``Job``s on a few daemon threads; see the module docstring."""

    def __init__(self, threads: int = THREADS) -> None:
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._count = threads
        self._lock = threading.Lock()
        self.queued_bytes = 0
        self.pending: set[asyncio.Future[None]] = set()
        self.failures = 0
        self.written = 0

    def submit(self, work: Callable[[], None], size: int) -> asyncio.Future[None]:
        """Queue ``work`` (``size``: bytes it holds); the future resolves when it has run."""
        loop = asyncio.get_running_loop()
        if not self._threads:
            self._start()
        future: asyncio.Future[None] = loop.create_future()
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)
        with self._lock:
            self.queued_bytes += size
        self._queue.put(Job(work, size, future))
        return future

    @property
    def saturated(self) -> bool:
        return self.queued_bytes > MAX_QUEUED_BYTES

    def _start(self) -> None:
        for i in range(self._count):
            thread = threading.Thread(target=self._run, name=f"imagegate-archive-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            batch: list[Job] = []
            while job is not None:
                batch.append(job)
                if len(batch) >= BATCH:
                    break
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
            failed = 0
            for item in batch:
                try:
                    item.work()
                except Exception as exc:  # a failed archive write must not end the thread
                    failed += 1
                    log.warning("background image store failed: %s", getattr(exc, "message", exc))
            with self._lock:
                self.queued_bytes -= sum(item.size for item in batch)
                self.failures += failed
                self.written += len(batch) - failed
            by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
            for item in batch:  # each future on its own loop (a library may run several)
                by_loop.setdefault(item.future.get_loop(), []).append(item)
            for loop, jobs in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_resolve, jobs)
                except RuntimeError:  # that loop is closed: nobody is waiting there any more
                    pass
            if job is None:
                return

    async def drain(self) -> None:
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        for _ in self._threads:
            self._queue.put(None)
        threads, self._threads = self._threads, []
        for thread in threads:
            await asyncio.to_thread(thread.join, 5)


def _resolve(batch: list[Job]) -> None:
    for job in batch:
        if not job.future.done():
            job.future.set_result(None)
