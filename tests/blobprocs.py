"""Worker processes for the blob-pack tests: each is a separate interpreter (``spawn``) with
its own ``LocalBlobStore`` on a shared directory, as two gateway workers would be.

The functions run in the child; they report through a ``multiprocessing`` queue and never
raise (a child's traceback would otherwise be lost to the test).
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import threading
import traceback
from multiprocessing.context import SpawnContext
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from imagegate.blobs import LocalBlobStore

SPAWN: SpawnContext = multiprocessing.get_context("spawn")


def read_back(root: str, keys: list[str], out: Any) -> None:
    """Read ``keys`` from the blob dir; put ``{key: bytes | None}`` (or the error) on ``out``."""
    try:

        async def read() -> dict[str, bytes | None]:
            store = LocalBlobStore(Path(root), pack_max_bytes=4096)
            try:
                found = {key: await store.get(key) for key in keys}
                assert all([await store.exists(key) for key in keys if found[key] is not None])
                return found
            finally:
                await store.close()

        out.put(("ok", os.getpid(), asyncio.run(read())))
    except BaseException:  # reported to the test, which fails on it
        out.put(("error", os.getpid(), traceback.format_exc()))


def write_many(root: str, blobs: list[bytes], start: Barrier, out: Any) -> None:
    """Write ``blobs`` from one thread each, all released at once by ``start`` (shared with
    the other processes); put ``("ok", pid, errors)`` on ``out``."""
    errors: list[str] = []
    try:
        store = LocalBlobStore(Path(root))
        ready = threading.Barrier(len(blobs) + 1)

        def write(blob: bytes) -> None:
            ready.wait()
            try:
                store.put_sync(hashlib.sha256(blob).hexdigest(), blob)
            except BaseException:
                errors.append(traceback.format_exc())

        threads = [threading.Thread(target=write, args=(b,)) for b in blobs]
        for thread in threads:
            thread.start()
        start.wait(60)  # every process has its threads lined up
        ready.wait()
        for thread in threads:
            thread.join(60)
        asyncio.run(store.close())
        out.put(("ok", os.getpid(), errors))
    except BaseException:
        out.put(("error", os.getpid(), traceback.format_exc()))
