"""The access log: one line per request, formatted and written off the event loop.

The HTTP edge (``api/accesslog.py``) hands ``AccessWriter.submit`` a small tuple per request:
one append to a bounded deque, nothing formatted, no lock, no syscall. One daemon thread per
process wakes when the deque turns non-empty, lets a batch gather for ``interval_s``, turns
each entry into an ``AccessRecord`` and a line, and writes the whole batch with one write and
one flush. A slow disk or a blocked pipe fills the deque, and then lines are dropped and
counted (``dropped``) rather than slowing requests; ``flush`` (app shutdown, exit) writes what
is queued.

Lines go to the ``imagegate.access`` logger. Unless a logging config gave that logger its own
handlers, an ``AccessHandler`` writing to stderr is installed (like uvicorn's access log), so
``2>file`` or a ``dictConfig`` redirects them. Handlers other than ``AccessHandler`` get one
``LogRecord`` per line.

Lines never hold a prompt, a secret, a query string or base64: only the fields below.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

LOGGER = "imagegate.access"
MAX_TEXT_CHARS = 256  # one user-supplied value (a path, a model name) in a line

log = logging.getLogger("imagegate")

Raw = tuple[Any, ...]
Entry = tuple[Callable[[Raw], str], Raw]  # (render, what the edge saw); rendered in the thread


@dataclass(slots=True)
class AccessRecord:
    """One request, as logged; the field names are the JSON keys (stable)."""

    time: float  # unix seconds when the request arrived
    method: str
    path: str  # never a query string
    status: int
    duration_ms: float
    request_bytes: int
    response_bytes: int
    trace_id: str | None = None
    workspace: str | None = None
    key_id: str | None = None
    model: str | None = None  # asked
    served_model: str | None = None
    attempts: int | None = None
    cache: str | None = None  # "HIT" | "MISS" | None (not asked)
    cost_usd: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, every key present (None when unknown), in a fixed order."""
        return {
            "time": iso_time(self.time),
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "trace_id": self.trace_id,
            "workspace": self.workspace,
            "key_id": self.key_id,
            "model": self.model,
            "served_model": self.served_model,
            "attempts": self.attempts,
            "cache": self.cache,
            "duration_ms": round(self.duration_ms, 3),
            "cost_usd": self.cost_usd,
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
        }


_second: list[tuple[int, str]] = [(-1, "")]  # the last second formatted: one strftime a second


def iso_time(t: float) -> str:
    """``2026-01-31T12:00:00.123Z`` (UTC, milliseconds)."""
    sec, frac = divmod(int(t * 1000), 1000)
    cached_sec, text = _second[0]
    if cached_sec != sec:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _second[0] = (sec, text)  # one store: another thread sees the old pair or the new
    return f"{text}.{frac:03d}Z"


def clip(value: str) -> str:
    return value if len(value) <= MAX_TEXT_CHARS else value[:MAX_TEXT_CHARS] + "…"


def _word(value: str | None) -> str:
    """A value as one text-line word: ``-`` when unknown, JSON-quoted when it has spaces,
    quotes, ``=`` or control characters (a line can never be split or forged)."""
    if value is None or value == "":
        return "-"
    if value.isprintable() and not any(c in value for c in ' "='):
        return value
    return json.dumps(value)


def text_line(r: AccessRecord) -> str:
    """``<time> <method> <path> <status> key=value …`` (``-`` for unknown values)."""
    model = "-"
    if r.model is not None or r.served_model is not None:
        model = f"{_word(r.model)}->{_word(r.served_model)}"
    attempts = "-" if r.attempts is None else str(r.attempts)
    cost = "-" if r.cost_usd is None else f"{r.cost_usd:.6f}"
    return (
        f"{iso_time(r.time)} {_word(r.method)} {_word(r.path)} {r.status}"
        f" trace={_word(r.trace_id)} ws={_word(r.workspace)} key={_word(r.key_id)}"
        f" model={model} attempts={attempts} cache={r.cache or '-'}"
        f" ms={r.duration_ms:.1f} cost={cost} in={r.request_bytes} out={r.response_bytes}"
    )


def json_line(r: AccessRecord) -> str:
    return json.dumps(r.as_dict(), separators=(",", ":"))  # ASCII: no U+2028 line breaks


class AccessHandler(logging.Handler):
    """Writes access lines as they are (no prefix) to ``stream``, default: the current stderr;
    a batch is one write and one flush."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(logging.INFO)
        self._stream = stream

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_batch(record.getMessage() + "\n")
        except Exception:
            self.handleError(record)

    def write_batch(self, text: str) -> None:
        self.acquire()
        try:
            stream = self.stream
            stream.write(text)
            stream.flush()
        finally:
            self.release()


def ensure_handler() -> logging.Logger:
    """The access logger, with an ``AccessHandler`` to stderr unless it has handlers already
    (then the operator's logging config decides where lines go)."""
    logger = logging.getLogger(LOGGER)
    if not logger.handlers:
        logger.addHandler(AccessHandler())
        logger.propagate = False  # not a second time through the root handler's format
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)  # ``access_log`` is the switch, not ``log_level``
    return logger


class AccessWriter:
    """Bounded hand-off from the event loop to one writer thread (see the module docstring)."""

    def __init__(self, capacity: int = 16384, interval_s: float = 0.1) -> None:
        self.capacity = capacity
        self.interval_s = interval_s
        self.dropped = 0  # lines refused because the queue was full
        self.failed = 0  # lines lost to a formatting or write error
        self.written = 0
        self._queue: deque[Entry] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one drain at a time: lines stay in order
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()  # apps on two event loops: still one thread
        self._reported_drops = 0

    def submit(self, entry: Entry) -> None:
        """Called on the event loop for every request: never blocks, never raises."""
        queue = self._queue
        if len(queue) >= self.capacity:
            self.dropped += 1
            return
        queue.append(entry)
        # append, then look at the flag; the thread clears the flag, then drains: no entry is
        # left behind, and ``set`` (a lock) runs once per batch, not once per request
        if not self._wake.is_set():
            if self._thread is None:
                self._start()
            self._wake.set()

    def _start(self) -> None:
        with self._starting:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="imagegate-access", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.interval_s)  # let a batch gather: one write for many lines
            self._wake.clear()
            self._drain()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Write everything queued now, in the calling thread; False if the writer thread held
        the output longer than ``timeout_s`` (a stuck stream)."""
        if not self._lock.acquire(timeout=timeout_s):
            return False
        try:
            self._write_queued()
        finally:
            self._lock.release()
        return True

    def stats(self) -> dict[str, int]:
        return {
            "pending": len(self._queue),
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
        }

    def _drain(self) -> None:
        with self._lock:
            self._write_queued()

    def _write_queued(self) -> None:
        queue = self._queue
        lines: list[str] = []
        while queue:
            render, raw = queue.popleft()
            try:
                lines.append(render(raw))
            except Exception:
                self.failed += 1
        if lines:
            try:
                emit(lines)
                self.written += len(lines)
            except Exception:
                self.failed += len(lines)
        if self.dropped != self._reported_drops:
            log.warning(
                "access log: %d line(s) dropped, the output was too slow",
                self.dropped - self._reported_drops,
            )
            self._reported_drops = self.dropped


def emit(lines: list[str]) -> None:
    """Lines to the access logger: one write per ``AccessHandler``; a ``LogRecord`` per line
    for any other handler setup (filters, levels and formatters then apply)."""
    logger = logging.getLogger(LOGGER)
    if logger.disabled or not logger.isEnabledFor(logging.INFO):
        return
    handlers = logger.handlers
    if (
        handlers
        and not logger.propagate
        and not logger.filters
        and all(type(h) is AccessHandler and not h.filters for h in handlers)
    ):
        text = "\n".join(lines) + "\n"
        for handler in handlers:
            if handler.level <= logging.INFO:
                assert isinstance(handler, AccessHandler)
                handler.write_batch(text)
        return
    for line in lines:
        logger.handle(logger.makeRecord(LOGGER, logging.INFO, "access", 0, line, (), None))


WRITER = AccessWriter()  # one per process: every app in it shares the thread
atexit.register(WRITER.flush, 1.0)
