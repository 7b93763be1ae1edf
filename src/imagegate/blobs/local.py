"""Blobs in a local directory: ``<root>/<k[:2]>/<key>``, written atomically.

File IO runs in a worker thread so a slow disk never stalls the event loop. A write goes to a
temporary file first and is renamed into place, so a reader (another worker process, or the
file endpoint) never sees half an image.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

from .store import BlobStoreError, is_blob_key


class LocalBlobStore:
    """Content-addressed files under ``root`` (created on first write)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()

    def path_for(self, key: str) -> Path:
        if not is_blob_key(key):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / key[:2] / key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self.put_sync, key, data)

    def put_sync(self, key: str, data: bytes) -> None:
        """Blocking write (for callers already on a worker thread)."""
        path = self.path_for(key)
        if path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise BlobStoreError(f"local blob store: cannot write {key}: {exc}") from None

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._read, key)

    def _read(self, key: str) -> bytes | None:
        try:
            return self.path_for(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BlobStoreError(f"local blob store: cannot read {key}: {exc}") from None

    async def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    async def close(self) -> None:
        return None
