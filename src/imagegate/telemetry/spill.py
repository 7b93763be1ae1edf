"""Spill files: where the trace writer keeps what memory cannot hold or the database will not
take yet, so that nothing is lost across an outage, a full buffer, a shutdown or a restart.

Layout under ``<data_dir>/spill/``:

- ``spill-<run ns>-<seq>-<pid>-<rand>.jsonl``: a segment owned by a live process, which holds
  an exclusive ``flock`` on it for as long as it has it open. One JSON line per item,
  ``{"t": "trace" | "identity" | "thread", "v": {field: value}}``, in submission order;
  ``<seq>`` is the submission number of its first item, so sorting names sorts items.
- ``<stem>.<pid>-<rand>.replay``: a segment another process claimed after its owner died.
- ``poison.jsonl``: items the store rejected on their own, with the error (appended by all).

Claiming is atomic: a segment is taken only if its ``flock`` can be had (its owner is gone)
and then renamed to the claimer's name; of two processes only one rename succeeds. A segment
is deleted only once every item in it has been written. Every function here does blocking
file I/O: callers run them in a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import IO, Any

import orjson

from ..ids import random_bits
from ..store import IdentityUpsert, ThreadUpsert, TraceRecord
from ..store.clean import clean_json

POISON_FILE = "poison.jsonl"
KINDS: dict[type, str] = {TraceRecord: "trace", IdentityUpsert: "identity", ThreadUpsert: "thread"}
CLASSES: dict[str, type] = {kind: cls for cls, kind in KINDS.items()}
FIELDS: dict[type, tuple[str, ...]] = {cls: tuple(f.name for f in fields(cls)) for cls in KINDS}
_NL = orjson.OPT_APPEND_NEWLINE


def encode(item: Any) -> bytes:
    """One spill line for ``item``; strings the store could not take are cleaned on the way."""
    kind = KINDS.get(type(item), "unknown")
    try:
        return orjson.dumps({"t": kind, "v": item}, default=str, option=_NL)
    except TypeError:  # lone surrogates, too deep, huge ints: the store's own cleaning
        names = FIELDS.get(type(item))
        value = {n: getattr(item, n) for n in names} if names else str(item)
        return orjson.dumps({"t": kind, "v": clean_json(value)}, option=_NL)


def decode(line: bytes) -> Any:
    """The item a spill line holds; ``ValueError`` when the line is not one we wrote."""
    try:
        data = orjson.loads(line)
        cls = CLASSES[data["t"]]
        value = data["v"]
        known = FIELDS[cls]
        return cls(**{k: v for k, v in value.items() if k in known})
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a spill line: {exc!r}") from exc


def read_items(
    segment: Segment, max_items: int
) -> tuple[list[Any], list[tuple[Any, str]], int, int]:
    """The next items of ``segment``: (items, undecodable lines with why, end offset, lines)."""
    lines, end = segment.read(max_items)
    items: list[Any] = []
    bad: list[tuple[Any, str]] = []
    for line in lines:
        try:
            items.append(decode(line))
        except ValueError as exc:
            bad.append((line, str(exc)))
    return items, bad, end, len(lines)


def _lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Segment:
    """One spill file: appended by its owner, read from the front, deleted once written."""

    def __init__(self, path: Path, handle: IO[bytes], *, own: bool, size: int, items: int) -> None:
        self.path = path
        self.own = own  # False: claimed from a dead process (not counted as ours by flush)
        self.size = size  # bytes readable (complete appends only)
        self.unread = items  # items not yet written to the store
        self.read_pos = 0
        self.closed = False
        self._handle = handle  # holds the flock; the owner appends through it
        self._reader: IO[bytes] | None = None
        self._io = threading.Lock()

    @classmethod
    def create(cls, directory: Path, run_ns: int, first_seq: int) -> Segment:
        """A new segment, locked before it becomes visible under a claimable name."""
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"spill-{run_ns:020d}-{first_seq:012d}-{os.getpid()}-{random_bits(32):08x}"
        tmp = directory / f".{stem}.tmp"
        handle = open(tmp, "xb")  # kept open: it holds the lock
        _lock(handle.fileno())
        path = directory / f"{stem}.jsonl"
        os.rename(tmp, path)
        return cls(path, handle, own=True, size=0, items=0)

    def append(self, lines: list[bytes]) -> None:
        data = b"".join(lines)
        with self._io:
            self._handle.write(data)
            self._handle.flush()
            self.size += len(data)
            self.unread += len(lines)

    def read(self, max_items: int) -> tuple[list[bytes], int]:
        """Up to ``max_items`` lines from the read position, and the offset after them."""
        with self._io:
            if self._reader is None:
                self._reader = open(self.path, "rb")  # closed in release()
            self._reader.seek(self.read_pos)
            lines: list[bytes] = []
            pos = self.read_pos
            while len(lines) < max_items and pos < self.size:
                line = self._reader.readline(self.size - pos)
                if not line:
                    break
                pos += len(line)
                lines.append(line)
            return lines, pos

    def commit(self, end: int, count: int) -> None:
        """Lines up to ``end`` (``count`` items) are in the store."""
        self.read_pos = end
        self.unread = max(0, self.unread - count)

    @property
    def exhausted(self) -> bool:
        return self.read_pos >= self.size

    def release(self) -> None:
        """Close (lock released); the file is deleted only when everything in it was written."""
        if self.closed:
            return
        with self._io:
            self.closed = True
            if self.exhausted:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            else:
                with contextlib.suppress(OSError):
                    self._handle.flush()
                    os.fsync(self._handle.fileno())
            if self._reader is not None:
                self._reader.close()
            self._handle.close()


def claim_leftovers(directory: Path, own_tag: str) -> list[Segment]:
    """Take every segment whose owner is gone, oldest first; live owners' files are skipped."""
    if not directory.is_dir():
        return []
    found = sorted(
        (p for p in directory.iterdir() if p.name.startswith("spill-")),
        key=lambda p: p.name.split(".", 1)[0],
    )
    claimed: list[Segment] = []
    for path in found:
        if not path.name.endswith((".jsonl", ".replay")):
            continue
        try:
            handle = open(path, "r+b")  # kept open: it holds the lock
        except FileNotFoundError:
            continue  # claimed (renamed) or finished by someone else meanwhile
        if not _lock(handle.fileno()):
            handle.close()  # its owner is alive
            continue
        target = directory / f"{path.name.split('.', 1)[0]}.{own_tag}.replay"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            handle.close()  # another process claimed it between our open and lock
            continue
        size, items = _count_lines(handle)
        claimed.append(Segment(target, handle, own=False, size=size, items=items))
    return claimed


def _count_lines(handle: IO[bytes]) -> tuple[int, int]:
    """Size and line count of a file; a torn last line (a crash mid-append) counts too."""
    handle.seek(0)
    size = lines = 0
    last = b"\n"
    while chunk := handle.read(1 << 20):
        size += len(chunk)
        lines += chunk.count(b"\n")
        last = chunk[-1:]
    return size, lines + (last != b"\n")


def append_poison(directory: Path, records: list[dict[str, Any]]) -> None:
    """Append rejected items (with their error) to ``poison.jsonl``; one write per line."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / POISON_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for record in records:
            record.setdefault("at", time.time())
            os.write(fd, _poison_line(record))
    finally:
        os.close(fd)


def _poison_line(record: dict[str, Any]) -> bytes:
    """Exact where possible: the standard library keeps big ints and escapes surrogates."""
    try:
        return orjson.dumps(record, default=str, option=_NL)
    except TypeError:
        pass
    try:
        return (json.dumps(record, default=str) + "\n").encode()
    except (TypeError, ValueError, RecursionError):
        return orjson.dumps(clean_json(record), option=_NL)


def poison_record(item: Any, error: str) -> dict[str, Any]:
    """What the poison file keeps of a rejected item: its kind, its fields, the error."""
    if isinstance(item, bytes):  # an undecodable spill line
        return {"t": "raw", "line": item.decode("utf-8", "replace"), "error": error}
    names = FIELDS.get(type(item))
    value = {n: getattr(item, n) for n in names} if names else repr(item)
    return {"t": KINDS.get(type(item), "unknown"), "v": value, "error": error}
