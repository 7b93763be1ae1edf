"""Run work in the request's task and cancel it the moment the client goes away."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.types import Receive

log = logging.getLogger("imagegate.api")
T = TypeVar("T")


async def unless_disconnected(
    work: Coroutine[Any, Any, T], receive: Receive, trace_id: str
) -> T | None:
    """Run ``work`` in this task; if the client goes away meanwhile, cancel it (→ None).

    One watcher task per request (no second task for the work itself, no ``asyncio.wait``):
    it only runs while this task is suspended inside ``work``, so its cancel always lands
    there, and cancellation unwinds the upstream attempt before the uploads are discarded.
    Used for the whole JSON call and, on a stream, for every write of its events.
    """
    this = asyncio.current_task()
    assert this is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        this.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        this.uncancel()
        log.info("client disconnected; cancelled trace %s", trace_id)
        return None
    finally:
        watcher.cancel()
