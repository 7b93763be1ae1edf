"""Blobs in a local directory: ``<root>/<k[:2]>/<key>``, written atomically.

File IO runs in a worker thread so a slow disk never stalls the event loop. A write goes to a
temporary file first and is renamed into place, so a reader (another worker process, or the
file endpoint) never sees half an image. ``cold`` writes (archive copies nobody is about to
read) of ``DIRECT_MIN`` bytes or more bypass the page cache; see ``direct``. Blobs up to
``pack_max_bytes`` are rows of ``<root>/pack.db`` instead of files; see ``pack``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

from . import direct
from .pack import BlobPack
from .store import BlobStoreError, is_blob_key

DIRECT_MIN = 256 * 1024  # below this a direct write saves nothing worth its padding
PACK_MAX = 64 * 1024  # default: blobs up to this size go to the pack, not to files


class LocalBlobStore:
    """Content-addressed files under ``root`` (created on first write)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        direct_io: bool = True,
        pack_max_bytes: int = PACK_MAX,
    ) -> None:
        self.root = Path(root).expanduser()
        self.direct_io = direct_io and direct.supported()
        self.direct_writes = 0  # how many writes went around the page cache
        self.pack_max_bytes = pack_max_bytes
        self.pack = BlobPack(self.root / "pack.db") if pack_max_bytes > 0 else None

    def path_for(self, key: str) -> Path:
        if not is_blob_key(key):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / key[:2] / key

    archive_threads = 2  # decoding, hashing and writing are CPU and local IO: a few suffice

    async def put(self, key: str, data: bytes, content_type: str, *, cold: bool = False) -> None:
        await asyncio.to_thread(self.put_sync, key, data, cold=cold)

    def put_sync(
        self, key: str, data: bytes, content_type: str | None = None, *, cold: bool = False
    ) -> None:
        """Blocking write (for callers already on a worker thread); the type is not kept."""
        path = self.path_for(key)
        if self.pack is not None and len(data) <= self.pack_max_bytes:
            self.pack.put(key, data)
            return
        if path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            written = None
            if cold and self.direct_io and len(data) >= DIRECT_MIN:
                written = self._write_direct(path, data)
            if written is None:
                written = self._write_buffered(path, data)
            os.replace(written, path)
        except OSError as exc:
            raise BlobStoreError(f"local blob store: cannot write {key}: {exc}") from None

    @staticmethod
    def _write_buffered(path: Path, data: bytes) -> str:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return tmp

    def _write_direct(self, path: Path, data: bytes) -> str | None:
        """The temporary file written around the page cache, or None to write normally."""
        tmp = str(path.parent / f".tmp-{os.urandom(8).hex()}")
        fd = direct.open_direct(tmp)
        if fd is None:
            self.direct_io = False  # this filesystem cannot; stop trying
            return None
        try:
            direct.write_all(fd, data)
        except OSError:  # e.g. a device with larger blocks: fall back, keep trying next time
            os.close(fd)
            os.unlink(tmp)
            return None
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        self.direct_writes += 1
        return tmp

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._read, key)

    def _read(self, key: str) -> bytes | None:
        try:
            return self.path_for(key).read_bytes()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise BlobStoreError(f"local blob store: cannot read {key}: {exc}") from None
        return self.pack.get(key) if self.pack is not None else None

    async def exists(self, key: str) -> bool:
        if self.path_for(key).is_file():
            return True
        if self.pack is None:
            return False
        return await asyncio.to_thread(self.pack.exists, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    def _delete(self, key: str) -> None:
        try:
            self.path_for(key).unlink(missing_ok=True)
        except OSError as exc:
            raise BlobStoreError(f"local blob store: cannot delete {key}: {exc}") from None
        if self.pack is not None and self.pack.path.exists():
            self.pack.delete(key)

    async def close(self) -> None:
        if self.pack is not None:
            self.pack.close()
