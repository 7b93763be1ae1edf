"""This process's shutdown, as the request path sees it (docs/deployment.md).

``DRAIN`` is set by the first SIGTERM/SIGINT (``signals.py``): ``/health/ready`` then answers
503 at once, and a request cancelled once ``shutdown_grace_s`` has run out is recorded as
``503 server_shutting_down`` instead of ``499 client_closed_request``. One per process: the
signal is the process's, whatever apps it serves. No imports beyond the standard library, so
the pipeline (``gateway.py``) can ask it without pulling in the web layer.
"""

from __future__ import annotations

import time

SHUTTING_DOWN = (503, "server_shutting_down")
CLIENT_CLOSED = (499, "client_closed_request")


class Drain:
    def __init__(self) -> None:
        self.since: float | None = None  # time.monotonic() of the first signal
        self.grace_s = 0.0

    @property
    def draining(self) -> bool:
        return self.since is not None

    def begin(self, grace_s: float) -> None:
        """The first call wins: a second signal does not restart the grace."""
        if self.since is None:
            self.grace_s = grace_s
            self.since = time.monotonic()

    def expired(self) -> bool:
        """Whether the grace has run out (requests still running are being cancelled)."""
        return self.since is not None and time.monotonic() - self.since >= self.grace_s

    def reset(self) -> None:
        self.since = None


DRAIN = Drain()


def cancelled_status() -> tuple[int, str]:
    """Status and error code for a request whose task was cancelled: the shutdown's doing
    once the grace has run out, else the client's (it went away)."""
    return SHUTTING_DOWN if DRAIN.expired() else CLIENT_CLOSED
