"""Fan ``n`` out as parallel calls for providers that return fewer images per call than asked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ...errors import UpstreamFailure
from ...request import GeneratedImage

T = TypeVar("T")


def first_failure(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first provider failure inside a (nested) exception group, else its first leaf."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = list(exc.exceptions)
        else:
            leaves.append(exc)
    upstream = [e for e in leaves if isinstance(e, UpstreamFailure)]
    return (upstream or leaves)[0]


async def gather(n: int, call_one: Callable[[int], Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``call_one(i)`` for i in range(n) concurrently; the results in call order.

    The first failure cancels the rest and is raised as itself (not as an ``ExceptionGroup``),
    so the routing executor sees the provider's status and can retry or fall back.
    """
    if n <= 1:
        return [await call_one(0)]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call_one(i)) for i in range(n)]
    except BaseExceptionGroup as group_error:
        raise first_failure(group_error) from None
    return [task.result() for task in tasks]


async def fan_out(
    n: int, call_one: Callable[[int], Coroutine[Any, Any, list[GeneratedImage]]]
) -> list[GeneratedImage]:
    """``gather`` for calls that each return a list of images: all of them, in call order."""
    return [image for images in await gather(n, call_one) for image in images]
