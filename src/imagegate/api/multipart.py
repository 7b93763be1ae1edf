"""Streaming ``multipart/form-data`` parser for edits and variations.

Parts are parsed as they arrive (python-multipart): file parts are kept in memory up to
``spool_bytes`` and written to a temp file past it, and a file over ``max_file_bytes`` (or all
parts together over ``limits.max_multipart_bytes``) stops the upload at once with a 413.
Bytes written to temp files are reserved in the process-wide spool budget (``spool.py``) as
they are written; a request that would pass it stops with a 503 and its files are removed.
Image types are checked by magic bytes, not by the part's claimed content type. JSON parts
(``orq``, ``retry``…) are decoded with or without a part content type;
``fallback_on_codes[]`` may repeat; bracket names (``orq[retry][count]``, how the openai SDK
sends ``extra_body``) are decoded into nested objects and lists.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..config import LimitsConfig, UploadConfig
from ..errors import InvalidRequest, PayloadTooLarge, UnsupportedFileType
from ..request import UploadedFile, sniff_image
from .spool import SpoolBudget
from .stream import human_bytes

FILE_FIELDS = {"image": "image", "image[]": "image", "mask": "mask"}
JSON_FIELDS = frozenset(
    {
        "orq",
        "retry",
        "cache",
        "load_balancer",
        "timeout",
        "fallbacks",
        "metadata",
        "identity",
        "contact",
        "thread",
    }
)
LIST_FIELDS = {"fallback_on_codes[]": "fallback_on_codes", "fallback_on_codes": "fallback_on_codes"}
MAX_FIELD_BYTES = 1024 * 1024
MAX_TEXT_BYTES = 4 * 1024 * 1024  # all text fields together
MAX_PARTS = 256  # the openai SDK sends every option leaf as its own part
MAX_KEY_CHARS = 256
MAX_KEY_DEPTH = 8
FRAMING_BYTES = 1024 * 1024  # boundaries and part headers allowed beyond the parts' data
HEAD_BYTES = 64 * 1024  # first bytes of a spooled file kept for the pixel-count probe
MAX_HEADER_BYTES = 8 * 1024  # one part header's name or value
_DEFAULT_LIMITS = LimitsConfig()


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    # Views of the received chunks, joined once at the end: a growing BytesIO re-copies
    # itself on every resize (~8 copies of a 1 MB upload).
    chunks: list[bytes | memoryview] = field(default_factory=list)
    size: int = 0
    is_file: bool = False
    head: bytes = b""
    tmp: Any = None
    tmp_path: str | None = None
    reserved: int = 0  # bytes taken from the spool budget for ``tmp``


@dataclass
class ParsedForm:
    fields: dict[str, Any]
    images: list[UploadedFile]
    mask: UploadedFile | None


def framed_cap(limits: LimitsConfig) -> int:
    """The most raw body bytes a form may take: its parts plus their framing."""
    return limits.max_multipart_bytes + FRAMING_BYTES


def split_bracketed(name: str) -> tuple[str, list[str]]:
    """``orq[retry][on_codes][]`` → ("orq", ["retry", "on_codes", ""]); a 400 if malformed."""
    root, _, rest = name.partition("[")
    if not root or not rest.endswith("]") or len(name) > MAX_KEY_CHARS:
        raise InvalidRequest(f"malformed form field name {name[:80]!r}", param=name[:80])
    path = rest[:-1].split("][")
    if len(path) > MAX_KEY_DEPTH or any("[" in seg or "]" in seg for seg in path):
        raise InvalidRequest(f"malformed form field name {name[:80]!r}", param=name[:80])
    return root, path


def _occupied(node: dict[str, Any], path: list[str]) -> bool:
    """Whether ``path`` already ends at a value in ``node`` (so ``[]`` must start a new item)."""
    for i, seg in enumerate(path):
        if seg == "" or seg not in node:
            return False
        if i == len(path) - 1:
            return True
        child = node[seg]
        if not isinstance(child, dict):
            return True
        node = child
    return False


def _put(node: dict[str, Any], key: str, path: list[str], value: str, name: str) -> None:
    if not path:
        node[key] = value
        return
    head, rest = path[0], path[1:]
    if head == "":
        seq = node.setdefault(key, [])
        if not isinstance(seq, list):
            raise InvalidRequest(f"{name}: conflicts with an earlier field", param=name)
        if not rest:
            seq.append(value)
            return
        if seq and isinstance(seq[-1], dict) and not _occupied(seq[-1], rest):
            item = seq[-1]
        else:
            item = {}
            seq.append(item)
        _put(item, rest[0], rest[1:], value, name)
        return
    child = node.setdefault(key, {})
    if not isinstance(child, dict):
        raise InvalidRequest(f"{name}: conflicts with an earlier field", param=name)
    _put(child, head, rest, value, name)


def put_bracketed(fields: dict[str, Any], name: str, value: str) -> None:
    """Decode a bracket-notation field the way the openai SDK encodes ``extra_body`` in
    multipart: ``orq[retry][count]=2``, ``orq[fallbacks][][model]=a``, ``x[]=1`` repeated."""
    root, path = split_bracketed(name)
    _put(fields, root, path, value, name)


class _Collector:
    """Receives parser callbacks and builds fields and files with bounded memory."""

    def __init__(
        self, limits: UploadConfig, body_limits: LimitsConfig, spool: SpoolBudget | None
    ) -> None:
        self.limits = limits
        self.max_total = body_limits.max_multipart_bytes
        self.spool = spool
        self.total = 0  # data bytes of every part so far
        self.fields: dict[str, Any] = {}
        self.images: list[UploadedFile] = []
        self.mask: UploadedFile | None = None
        self.part: _Part | None = None
        self.parts = 0
        self.text_bytes = 0
        self._hname = b""
        self._hvalue = b""

    # parser callbacks -------------------------------------------------------------------
    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidRequest(f"too many form parts (max {MAX_PARTS})", param="body")
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]
        if len(self._hname) > MAX_HEADER_BYTES:
            raise InvalidRequest("malformed multipart body: part header too long", param="body")

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]
        if len(self._hvalue) > MAX_HEADER_BYTES:
            raise InvalidRequest("malformed multipart body: part header too long", param="body")

    def on_header_end(self) -> None:
        assert self.part is not None
        self.part.headers[self._hname.lower()] = self._hvalue
        self._hname, self._hvalue = b"", b""

    def on_headers_finished(self) -> None:
        part = self.part
        assert part is not None
        disposition = part.headers.get(b"content-disposition", b"")
        _, params = parse_options_header(disposition)
        part.name = params.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = params.get(b"filename")
        part.filename = raw_filename.decode("utf-8", "replace") if raw_filename else None
        if part.name in FILE_FIELDS:
            if len(self.images) >= self.limits.max_files and part.name != "mask":
                raise InvalidRequest(
                    f"too many images (max {self.limits.max_files})", param=part.name
                )
            part.is_file = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        assert part is not None
        chunk = memoryview(data)[start:end]  # no copy: the parser hands over immutable bytes
        part.size += len(chunk)
        self.total += len(chunk)
        if self.total > self.max_total:
            limit = human_bytes(self.max_total)
            raise PayloadTooLarge(
                f"the form's parts exceed {limit} at {part.name!r}", param=part.name
            )
        if not part.is_file:
            self.text_bytes += len(chunk)
            if part.size > MAX_FIELD_BYTES or self.text_bytes > MAX_TEXT_BYTES:
                raise PayloadTooLarge(f"field {part.name!r} is too large", param=part.name)
            part.chunks.append(bytes(chunk))  # small: copied, not pinning whole chunks
            return
        if part.size > self.limits.max_file_bytes:
            limit = human_bytes(self.limits.max_file_bytes)
            raise PayloadTooLarge(f"file {part.name!r} exceeds {limit}", param=part.name)
        if len(part.head) < 16:
            part.head = (part.head + bytes(chunk[:16]))[:16]
        if part.tmp is None and part.size > self.limits.spool_bytes:
            self._spool(part, chunk)
        elif part.tmp is not None:
            self._reserve(part, len(chunk))
            if len(part.head) < HEAD_BYTES:
                part.head += bytes(chunk[: HEAD_BYTES - len(part.head)])
            part.tmp.write(chunk)
        else:
            part.chunks.append(chunk)

    def on_part_end(self) -> None:
        part = self.part
        assert part is not None
        self.part = None
        if part.is_file:
            self._finish_file(part)
        else:
            self._finish_field(part)

    # helpers ----------------------------------------------------------------------------
    def _reserve(self, part: _Part, nbytes: int) -> None:
        if self.spool is not None:
            self.spool.reserve(nbytes)  # the 503 when the process holds too much on disk
            part.reserved += nbytes

    def _spool(self, part: _Part, chunk: memoryview) -> None:
        """Move the part to a temp file: budget first, so a refused part leaves nothing."""
        self._reserve(part, part.size)
        fd, part.tmp_path = tempfile.mkstemp(prefix="imagegate-", dir=self.limits.tmp_dir)
        part.tmp = os.fdopen(fd, "wb")
        head = bytearray()
        for piece in (*part.chunks, chunk):
            if len(head) >= HEAD_BYTES:
                break
            head += piece[: HEAD_BYTES - len(head)]
        part.head = bytes(head)
        part.tmp.writelines(part.chunks)
        part.chunks = []
        part.tmp.write(chunk)

    def _drop_part(self, part: _Part) -> None:
        """Close and delete an unfinished part's temp file and give its bytes back."""
        if part.tmp is not None:
            part.tmp.close()
            part.tmp = None
        if part.tmp_path:
            os.unlink(part.tmp_path)
            part.tmp_path = None
        if part.reserved and self.spool is not None:
            self.spool.release(part.reserved)
        part.reserved = 0

    def _finish_file(self, part: _Part) -> None:
        if part.tmp is not None:
            part.tmp.close()
            part.tmp = None
        kind = sniff_image(part.head)
        if kind is None:
            self._drop_part(part)
            raise UnsupportedFileType(
                f"{part.name}: unsupported file type; send a png, jpeg or webp image",
                param=part.name,
            )
        upload = UploadedFile(
            field=FILE_FIELDS[part.name],
            filename=part.filename or f"{FILE_FIELDS[part.name]}.{kind}",
            kind=kind,
            size=part.size,
            data=None if part.tmp_path else b"".join(part.chunks),
            path=part.tmp_path,
            head=part.head if part.tmp_path else b"",
            spool=self.spool,
            spooled=part.reserved,
        )
        part.tmp_path, part.reserved = None, 0  # the upload owns the file and its bytes now
        if upload.field == "mask":
            if self.mask is not None:
                self.mask.discard()
            self.mask = upload
        else:
            self.images.append(upload)

    def _finish_field(self, part: _Part) -> None:
        raw = b"".join(part.chunks)
        name = part.name
        if name in JSON_FIELDS:
            try:
                self.fields[name] = orjson.loads(raw) if raw.strip() else None
            except orjson.JSONDecodeError:
                raise InvalidRequest(f"{name}: not valid JSON", param=name) from None
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"{name}: not valid UTF-8 text", param=name) from None
        if name in LIST_FIELDS:
            self.fields.setdefault(LIST_FIELDS[name], []).append(text)
        elif "[" in name:
            put_bracketed(self.fields, name, text)
        elif name:
            self.fields[name] = text

    def cleanup(self) -> None:
        for upload in self.images:
            upload.discard()
        if self.mask is not None:
            self.mask.discard()
        if self.part is not None:
            self._drop_part(self.part)


async def parse_multipart(
    content_type: str,
    stream: AsyncIterator[bytes],
    limits: UploadConfig,
    body_limits: LimitsConfig | None = None,
    spool: SpoolBudget | None = None,
) -> ParsedForm:
    """Parse a multipart body from ``stream``; on any error, temp files are removed and
    their bytes returned to ``spool`` (None: temp files are not counted, for library use)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidRequest("multipart body without a boundary", param="body")
    body_limits = body_limits or _DEFAULT_LIMITS
    raw_cap = framed_cap(body_limits)
    received = 0
    collector = _Collector(limits, body_limits, spool)
    callbacks: Any = {
        "on_part_begin": collector.on_part_begin,
        "on_part_data": collector.on_part_data,
        "on_part_end": collector.on_part_end,
        "on_header_field": collector.on_header_field,
        "on_header_value": collector.on_header_value,
        "on_header_end": collector.on_header_end,
        "on_headers_finished": collector.on_headers_finished,
    }
    parser = MultipartParser(boundary, callbacks, max_header_count=16)
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > raw_cap:  # framing without end (e.g. an endless epilogue)
                raise PayloadTooLarge(
                    f"multipart body exceeds {human_bytes(raw_cap)}", param="body"
                )
            if chunk:
                parser.write(chunk)
        parser.finalize()
        if parser.state != 13 and collector.parts == 0:  # 13 == MultipartState.END
            raise InvalidRequest("malformed multipart body", param="body")
    except (MultipartParseError, ValueError) as exc:
        collector.cleanup()
        if isinstance(exc, InvalidRequest):
            raise
        raise InvalidRequest(f"malformed multipart body: {exc}", param="body") from None
    except BaseException:
        collector.cleanup()
        raise
    if collector.part is not None:
        collector.cleanup()
        raise InvalidRequest("malformed multipart body: truncated part", param="body")
    return ParsedForm(collector.fields, collector.images, collector.mask)
