"""Plain typed values that cross the pipeline: the normalised request and the provider result.

No Starlette or aiohttp object crosses these; providers take an ``ImageRequest`` and return an
``ImageResult`` or raise an ``UpstreamFailure``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Literal, Protocol

from .models import RoutingOptions

Operation = Literal["generations", "edits", "variations"]
OPERATIONS: tuple[Operation, ...] = ("generations", "edits", "variations")

MIME_BY_KIND = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def sniff_image(head: bytes) -> str | None:
    """Image kind from magic bytes: ``png``, ``jpeg``, ``webp`` or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


class SpoolAccount(Protocol):
    """Where a spooled file's bytes are given back when it is deleted (``api/spool.py``)."""

    def release(self, nbytes: int) -> None: ...


@dataclass(slots=True)
class UploadedFile:
    """An uploaded image: small ones in memory, large ones spooled to a temp file.

    ``sha256`` is computed on first use (``digest``): only the cache key needs it, and hashing
    every upload would cost ~0.6 ms of CPU per megabyte on requests that never ask for cache.

    The temp file has one owner (the request; ``discard`` drops it) plus any number of holds
    (``hold``/``unhold``): a coalesced cache flight holds the leader's uploads so the leader's
    client leaving does not delete files the flight still sends. The file goes when the owner
    has let go and the last hold is gone; its bytes then return to ``spool``.
    """

    field: str
    filename: str
    kind: str  # png | jpeg | webp (by magic bytes)
    size: int
    sha256: str | None = None
    data: bytes | None = None
    path: str | None = None
    head: bytes = b""  # first bytes of a spooled file, for header probes (pixel counts)
    spool: SpoolAccount | None = None
    spooled: int = 0  # bytes reserved in ``spool`` for the temp file
    holds: int = 0
    dropped: bool = False
    derived: dict[Any, Any] | None = None  # per-request conversions (masks), made once

    def digest(self) -> str:
        """The SHA-256 of the bytes (hex), computed once; blocking for a spooled file."""
        if self.sha256 is None:
            if self.data is not None:
                self.sha256 = hashlib.sha256(self.data).hexdigest()
            else:
                assert self.path is not None
                with open(self.path, "rb") as fh:
                    self.sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
        return self.sha256

    @classmethod
    def from_bytes(cls, data: bytes, filename: str = "image", field: str = "image") -> UploadedFile:
        """An in-memory upload for library use; the type comes from the magic bytes."""
        kind = sniff_image(data[:16])
        if kind is None:
            from .errors import UnsupportedFileType

            raise UnsupportedFileType(
                f"{field}: unsupported file type; send a png, jpeg or webp image", param=field
            )
        if "." not in filename:
            filename = f"{filename}.{kind}"
        return cls(field, filename, kind, len(data), data=data)

    @property
    def content_type(self) -> str:
        return MIME_BY_KIND[self.kind]

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        with open(self.path, "rb") as fh:
            return fh.read()

    def open(self) -> IO[bytes]:
        if self.data is not None:
            import io

            return io.BytesIO(self.data)
        assert self.path is not None
        return open(self.path, "rb")

    def discard(self) -> None:
        """The owner lets go (idempotent); the temp file goes now unless a hold keeps it."""
        self.dropped = True
        if self.holds == 0:
            self._delete()

    def hold(self) -> None:
        """Keep the temp file past the owner's ``discard`` until ``unhold``."""
        self.holds += 1

    def unhold(self) -> None:
        self.holds -= 1
        if self.holds == 0 and self.dropped:
            self._delete()

    def _delete(self) -> None:
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None
        if self.spooled and self.spool is not None:
            self.spool.release(self.spooled)
        self.spooled = 0
        self.derived = None


# Parameters a provider may receive, in the order they are sent.
PROVIDER_PARAMS: tuple[str, ...] = (
    "prompt",
    "n",
    "size",
    "quality",
    "style",
    "background",
    "moderation",
    "output_format",
    "output_compression",
    "response_format",
    "user",
    "seed",
)


@dataclass(slots=True)
class ImageRequest:
    """One normalised image request, whichever endpoint and encoding it came from."""

    operation: Operation
    model: str
    prompt: str | None = None
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    background: str | None = None
    moderation: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    response_format: str | None = None
    user: str | None = None
    seed: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    images: list[UploadedFile] = field(default_factory=list)
    mask: UploadedFile | None = None
    options: RoutingOptions = field(default_factory=RoutingOptions)

    def params(self) -> dict[str, Any]:
        """The provider-facing parameters the caller gave (None means not given)."""
        out: dict[str, Any] = {}
        for name in PROVIDER_PARAMS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @property
    def n_images(self) -> int:
        return self.n or 1

    def uploads(self) -> list[UploadedFile]:
        return [*self.images, *([self.mask] if self.mask is not None else [])]

    def discard_files(self) -> None:
        for f in self.images:
            f.discard()
        if self.mask is not None:
            self.mask.discard()

    def hold_files(self) -> Callable[[], None]:
        """Hold every upload now; the returned call lets go (once, however often called)."""
        held = self.uploads()
        for upload in held:
            upload.hold()

        def release() -> None:
            while held:
                held.pop().unhold()

        return release


@dataclass(slots=True)
class GeneratedImage:
    """One image as a provider gave it: base64 text, raw bytes, or a URL (http(s) or data:)."""

    b64: str | None = None
    data: bytes | None = None
    url: str | None = None
    mime: str | None = None
    revised_prompt: str | None = None

    def raw(self) -> bytes | None:
        """The decoded bytes when the image is held inline (b64, bytes or a data: URL)."""
        if self.data is not None:
            return self.data
        if self.b64 is not None:
            return base64.b64decode(self.b64)
        if self.url is not None and self.url.startswith("data:"):
            _, _, payload = self.url.partition(",")
            return base64.b64decode(payload)
        return None


@dataclass(slots=True)
class ImageResult:
    """What a provider returns, normalised."""

    images: list[GeneratedImage]
    created: int | None = None
    usage: dict[str, Any] | None = None
    output_format: str | None = None
    size: str | None = None
    quality: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
