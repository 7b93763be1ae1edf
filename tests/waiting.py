"""Wait for a condition, never for a length of time.

A test that must see something happen in another thread, process or server polls for it with
a generous deadline: on a busy machine it simply takes longer, and the deadline only turns a
hang into a failure. Nothing here asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE_S = 20.0


def wait_until(
    condition: Callable[[], T],
    what: str = "condition",
    timeout_s: float = DEADLINE_S,
    every_s: float = 0.01,
) -> T:
    """``condition()``'s first truthy value, polled from this thread every ``every_s``;
    AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout_s:g} s")
        pause.wait(every_s)  # a poll interval, not a synchronisation point


async def until(
    condition: Callable[[], T], what: str = "condition", timeout_s: float = DEADLINE_S
) -> T:
    """The same inside an event loop: other tasks run between polls."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout_s:g} s")
        await asyncio.sleep(0.005)  # a poll interval, not a synchronisation point
