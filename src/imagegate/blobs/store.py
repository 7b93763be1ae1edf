"""The blob store boundary: image bytes in, content-addressed keys out.

A key is the SHA-256 hex digest of the bytes, so the same image is stored once however many
requests, providers or cache entries refer to it. Backends only move bytes; signing URLs and
answering formats happen above them::

    key = blob_key(data)
    await store.put(key, data, "image/png")
    data = await store.get(key)   # None when absent

Background writes (archive copies of images answered in base64) all take one path: the
archive threads (``archive.py``) call ``put_sync``, which every backend implements.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol, runtime_checkable

from ..request import MIME_BY_KIND, sniff_image

KEY_RE = re.compile(r"[0-9a-f]{64}")
OCTET_STREAM = "application/octet-stream"


class BlobStoreError(Exception):
    """The store could not read or write (disk full, S3 down, bad credentials...)."""


def blob_key(data: bytes) -> str:
    """The content address of ``data``: its SHA-256 as lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def is_blob_key(value: str) -> bool:
    """True for a well-formed key (also what keeps paths and object names safe)."""
    return bool(KEY_RE.fullmatch(value))


def content_type_of(data: bytes, hint: str | None = None) -> str:
    """MIME type by magic bytes; the provider's ``hint`` when the bytes are not recognised."""
    kind = sniff_image(data[:16])
    if kind is not None:
        return MIME_BY_KIND[kind]
    if hint and hint.startswith("image/"):
        return hint
    return OCTET_STREAM


@runtime_checkable
class BlobStore(Protocol):
    """Where image bytes live. Writes are idempotent: a key always names the same bytes."""

    archive_threads: int
    """Archive threads that suit ``put_sync``: a few for a local disk (the work is CPU), more
    for a network store (its threads mostly wait)."""

    async def put(self, key: str, data: bytes, content_type: str, *, cold: bool = False) -> None:
        """Store ``data`` under ``key`` (a no-op when it is already there). ``cold``: nobody
        is about to read it (an archive copy), so a backend may skip its read caches."""
        ...

    def put_sync(
        self, key: str, data: bytes, content_type: str | None = None, *, cold: bool = False
    ) -> None:
        """``put`` as a blocking call, for the archive threads (never on the event loop);
        ``content_type`` None: from the bytes."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None when absent."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is stored (cheaper than ``get``)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a no-op when absent). Only for blobs one owner wrote under a key
        nothing else shares (a job's uploads, ``jobs/inputs.py``): images are shared."""
        ...

    async def close(self) -> None:
        """Release sessions."""
        ...
