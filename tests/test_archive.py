"""The archive threads: every job runs once, off the loop; failures are counted, not fatal."""

from __future__ import annotations

import asyncio
import threading

import pytest

from imagegate import archive
from imagegate.archive import ArchiveWriter


async def test_jobs_run_on_archive_threads_and_resolve_their_futures() -> None:
    writer = ArchiveWriter(threads=2)
    ran: list[tuple[int, str]] = []
    lock = threading.Lock()

    def job(i: int) -> None:
        with lock:
            ran.append((i, threading.current_thread().name))

    futures = [writer.submit(lambda i=i: job(i), size=10) for i in range(200)]  # type: ignore[misc]
    await asyncio.wait_for(asyncio.gather(*futures), timeout=10)
    assert sorted(i for i, _ in ran) == list(range(200))  # each exactly once
    assert {name for _, name in ran} <= {"imagegate-archive-0", "imagegate-archive-1"}
    assert writer.written == 200 and writer.failures == 0 and writer.queued_bytes == 0
    await writer.close()


async def test_a_failing_job_is_counted_and_the_thread_goes_on() -> None:
    writer = ArchiveWriter(threads=1)

    def boom() -> None:
        raise OSError("disk full")

    done: list[int] = []
    first = writer.submit(boom, size=1)
    second = writer.submit(lambda: done.append(1), size=1)
    await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
    assert writer.failures == 1 and writer.written == 1 and done == [1]
    await writer.close()


async def test_queued_bytes_signal_saturation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_QUEUED_BYTES", 100)
    writer = ArchiveWriter(threads=1)
    gate = threading.Event()
    first = writer.submit(lambda: gate.wait(10), size=60)
    assert not writer.saturated
    second = writer.submit(lambda: None, size=60)
    assert writer.saturated  # the caller is told to wait for its own images
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
    assert not writer.saturated
    await writer.drain()
    await writer.close()


def test_one_writer_serves_event_loops_one_after_another() -> None:
    """A library user may run the gateway under asyncio.run more than once: the threads must
    keep serving the new loop after the old one closed."""
    writer = ArchiveWriter(threads=1)
    ran: list[int] = []

    async def once(i: int) -> None:
        await asyncio.wait_for(writer.submit(lambda: ran.append(i), size=1), timeout=10)

    asyncio.run(once(1))
    asyncio.run(once(2))  # a new loop; the thread started under the first one serves it
    assert ran == [1, 2]
    asyncio.run(writer.close())
