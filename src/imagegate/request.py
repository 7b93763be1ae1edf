"""Plain typed values that cross the pipeline: the normalised request and the provider result.

No Starlette or aiohttp object crosses these; providers take an ``ImageRequest`` and return an
``ImageResult`` or raise an ``UpstreamFailure``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import IO, Any, Literal, Protocol, TypedDict

from . import models as m
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


# --- the parameter table --------------------------------------------------------------------
# Every ImageRequest field says in its metadata how the pipeline treats it. Every list of
# request parameters (the body fields read, the cache key, prompt defaults, what providers get,
# OpenAI's wire fields) is derived from that table once, at import; a field without an entry
# stops the import with a message naming it (tests/test_params_table.py).

PARAM = "imagegate.param"  # the metadata key of a field's row
GEN: frozenset[Operation] = frozenset({"generations"})
GEN_EDIT: frozenset[Operation] = frozenset({"generations", "edits"})
EDIT: frozenset[Operation] = frozenset({"edits"})
ALL_OPS: frozenset[Operation] = frozenset(OPERATIONS)


@dataclass(frozen=True, slots=True)
class Param:
    """One row of the parameter table: how one ``ImageRequest`` field is treated.

    - ``key``: part of the exact-match cache key (``cache/key.py``: by value, unless a rule of
      its own there says how, e.g. uploads by digest);
    - ``prompt``: a stored prompt version may default it (the request's value wins);
    - ``send``: providers receive it through ``ImageRequest.params()``;
    - ``body``: copied as is from the validated request body (``options.build_request``);
    - ``type``: its type and range, an alias from ``models.py`` that the bodies validate with;
    - ``stored``: the type a prompt version's default is checked against, when stricter;
    - ``openai``: the operations whose OpenAI Images API body carries it, under this name.
    """

    key: bool
    prompt: bool = False
    send: bool = False
    body: bool = False
    type: Any = None
    stored: Any = None
    openai: frozenset[Operation] = frozenset()


def param(
    *,
    key: bool,
    prompt: bool = False,
    send: bool = False,
    body: bool = False,
    type: Any = None,  # the column is named for what it holds
    stored: Any = None,
    openai: frozenset[Operation] = frozenset(),
) -> dict[str, Param]:
    """A field's metadata: ``field(default=None, metadata=param(key=True, ...))``."""
    return {PARAM: Param(key, prompt, send, body, type, stored, openai)}


class _Image(TypedDict):
    key: bool
    send: bool
    body: bool


# The usual row: a body value that shapes the image (so in the key) and providers receive.
_IMAGE: _Image = {"key": True, "send": True, "body": True}


@dataclass(slots=True)
class ImageRequest:
    """One normalised image request, whichever endpoint and encoding it came from.

    The metadata of each field is its row in the parameter table (``Param``).
    """

    operation: Operation = field(metadata=param(key=True))
    # key: the routing target (the model, or the load balancer's set of models)
    # (None: the body named none; ``routing/names.py`` fills in the configured default)
    model: str | None = field(default=None, metadata=param(key=True, body=True, type=m.ModelName))
    prompt: str | None = field(
        default=None, metadata=param(**_IMAGE, type=m.PromptText, openai=GEN_EDIT)
    )
    # key: absent counts as 1 (every provider defaults it so)
    n: int | None = field(
        default=None, metadata=param(**_IMAGE, prompt=True, type=m.ImageCount, openai=ALL_OPS)
    )
    size: str | None = field(
        default=None,
        metadata=param(**_IMAGE, prompt=True, type=m.Size, stored=m.StoredSize, openai=ALL_OPS),
    )
    quality: str | None = field(
        default=None, metadata=param(**_IMAGE, prompt=True, type=m.Quality, openai=GEN_EDIT)
    )
    style: str | None = field(
        default=None, metadata=param(**_IMAGE, prompt=True, type=m.Style, openai=GEN)
    )
    background: str | None = field(
        default=None, metadata=param(**_IMAGE, prompt=True, type=m.Background, openai=GEN_EDIT)
    )
    moderation: str | None = field(
        default=None, metadata=param(**_IMAGE, prompt=True, type=m.Moderation, openai=GEN)
    )
    # gpt-image edits only: how closely the output keeps the input's features
    input_fidelity: str | None = field(
        default=None, metadata=param(**_IMAGE, prompt=True, type=m.InputFidelity, openai=EDIT)
    )
    output_format: str | None = field(
        default=None, metadata=param(**_IMAGE, prompt=True, type=m.OutputFormat, openai=GEN_EDIT)
    )
    output_compression: int | None = field(
        default=None, metadata=param(**_IMAGE, prompt=True, type=m.Compression, openai=GEN_EDIT)
    )
    # not in the key: one stored image answers either format
    response_format: str | None = field(
        default=None,
        metadata=param(key=False, send=True, body=True, type=m.ResponseFormat, openai=ALL_OPS),
    )
    # not in the key: an end-user label for the provider's abuse monitoring
    user: str | None = field(
        default=None,
        metadata=param(key=False, send=True, body=True, type=m.User, openai=ALL_OPS),
    )
    # not in the key: how the answer travels (SSE events), not what it holds; never sent as
    # a parameter: a provider that streams puts it on its own wire (``ProviderSpec.stream``)
    stream: bool | None = field(
        default=None, metadata=param(key=False, body=True, type=m.StreamFlag)
    )
    # not in the key: previews sent before the final image, which they do not change; a
    # cache hit replays the completed images only
    partial_images: int | None = field(
        default=None, metadata=param(key=False, body=True, type=m.PartialImages)
    )
    # in the key: it changes the picture (OpenAI's Images API has no seed)
    seed: int | None = field(default=None, metadata=param(**_IMAGE, prompt=True, type=m.Seed))
    metadata: dict[str, str] = field(default_factory=dict, metadata=param(key=False))
    # key: each upload by the SHA-256 of its bytes, in order
    images: list[UploadedFile] = field(default_factory=list, metadata=param(key=True))
    mask: UploadedFile | None = field(default=None, metadata=param(key=True))
    # key: only ``load_balancer`` (through the routing target); the rest routes or labels
    options: RoutingOptions = field(default_factory=RoutingOptions, metadata=param(key=True))
    # the body's known fields as sent (for the trace)
    echo: dict[str, Any] | None = field(default=None, metadata=param(key=False))

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


def read_table(cls: type) -> dict[str, Param]:
    """Each dataclass field's row, in field order; a field without one is a ``TypeError``."""
    missing = [f.name for f in fields(cls) if not isinstance(f.metadata.get(PARAM), Param)]
    if missing:
        raise TypeError(
            f"{cls.__name__}: field(s) {', '.join(missing)} have no row in the parameter table;"
            " give each field(metadata=param(key=..., ...)) (see request.Param)"
        )
    return {f.name: f.metadata[PARAM] for f in fields(cls)}


# Everything below is derived from the table, once, at import.
PARAMS: dict[str, Param] = read_table(ImageRequest)
# Copied from the validated body, in field order (options.build_request).
BODY_FIELDS: tuple[str, ...] = tuple(n for n, p in PARAMS.items() if p.body)
# Given to providers by ``ImageRequest.params()``, in the order they are sent.
PROVIDER_PARAMS: tuple[str, ...] = tuple(n for n, p in PARAMS.items() if p.send)
# Every field the cache key depends on (cache/key.py hashes most of them by value).
KEY_FIELDS: tuple[str, ...] = tuple(n for n, p in PARAMS.items() if p.key)
# Defaults a stored prompt version may set, with the type each is checked against on save.
PROMPT_PARAMS: tuple[str, ...] = tuple(n for n, p in PARAMS.items() if p.prompt)
PROMPT_PARAM_TYPES: dict[str, Any] = {n: PARAMS[n].stored or PARAMS[n].type for n in PROMPT_PARAMS}
# The body fields of OpenAI's Images API per operation, besides ``model`` and the files; an
# OpenAI-compatible adapter forwards exactly these from ``params()``
# (https://platform.openai.com/docs/api-reference/images).
OPENAI_FIELDS: dict[Operation, tuple[str, ...]] = {
    op: tuple(n for n in PROVIDER_PARAMS if op in PARAMS[n].openai) for op in OPERATIONS
}


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
