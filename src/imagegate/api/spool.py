"""The process-wide budget for upload bytes held in temp files (``limits.max_spooled_bytes``).

Why: ``uploads.max_file_bytes`` and ``limits.max_multipart_bytes`` bound one request, but many
concurrent uploads could still fill the disk. Bytes are reserved as they are written to a
temp file and released when the file is deleted (``UploadedFile.discard``, or the parser's
cleanup on an error); a request that would pass the budget gets a 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import threading

from ..errors import ServiceUnavailable

log = logging.getLogger("imagegate.api")
RETRY_AFTER_S = 5


class SpoolBudget:
    """Bytes in temp files across every request of this process; thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()

    def reserve(self, nbytes: int) -> None:
        """Take ``nbytes`` or raise the 503 (nothing taken then)."""
        with self._lock:
            if self.held + nbytes > self.limit:
                raise ServiceUnavailable(
                    "too many uploads in flight on this server; retry shortly",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            self.held += nbytes

    def release(self, nbytes: int) -> None:
        with self._lock:
            self.held -= nbytes
            if self.held < 0:  # a bug, but never one that fails a request
                log.error("spool budget released %d bytes more than it held", -self.held)
                self.held = 0


_PROCESS = SpoolBudget(0)


def process_budget(limit: int) -> SpoolBudget:
    """The one budget of this process, with ``limit`` from the config of the caller."""
    _PROCESS.limit = limit
    return _PROCESS


def held_bytes() -> int:
    """Bytes this process holds in upload temp files right now (for metrics and tests)."""
    return _PROCESS.held
