"""The first SIGTERM/SIGINT starts the drain; the second one exits at once.

uvicorn installs its own handlers before the app's lifespan starts (``Server.capture_signals``)
and drains on the first signal: it closes the listening sockets, lets the requests in flight
finish for ``timeout_graceful_shutdown`` (our ``lifecycle.shutdown_grace_s``), cancels the
rest, then runs the lifespan shutdown. ``watch_signals`` wraps whatever handler is installed,
so the app knows the drain has begun (``DRAIN``), and makes a second SIGTERM or SIGINT end
the process at once, with status 128 + the signal's number (143, 130), as a shell reports a
process killed by it. Not uvicorn's own ``force_exit``: that skips the lifespan shutdown but
leaves the store's threads running, and the process never ends. What the trace writer still
held in memory is lost then (spill files already written are replayed at the next start).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from . import DRAIN, Drain

SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, FrameType | None], Any]


def watch_signals(grace_s: float, drain: Drain = DRAIN) -> Callable[[], None]:
    """Wrap the installed SIGTERM/SIGINT handlers; returns the function that restores them.

    Nothing happens outside the main thread (signals are delivered there only; an app served
    from a test's thread has no signals of its own) or when no Python handler is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    restore: list[tuple[int, Any]] = []
    for sig in SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous):  # SIG_DFL/SIG_IGN: not under a server that drains
            continue
        signal.signal(sig, _wrapped(previous, grace_s, drain))
        restore.append((sig, previous))

    def undo() -> None:
        if threading.current_thread() is threading.main_thread():
            for sig, previous in restore:
                signal.signal(sig, previous)

    return undo


def _wrapped(previous: Handler, grace_s: float, drain: Drain) -> Handler:
    def handler(signum: int, frame: FrameType | None) -> None:
        if drain.draining:  # the second signal: now
            print(
                f"imagegate: second {signal.Signals(signum).name}, exiting now",
                file=sys.stderr,
                flush=True,
            )
            os._exit(128 + signum)
        drain.begin(grace_s)
        previous(signum, frame)

    return handler
