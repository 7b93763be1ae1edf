"""Fan ``n`` out as parallel single-image calls for providers that return one image per call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from ..request import GeneratedImage


async def fan_out(
    n: int, call_one: Callable[[int], Coroutine[Any, Any, list[GeneratedImage]]]
) -> list[GeneratedImage]:
    """Run ``call_one(i)`` for i in range(n) concurrently; the first failure cancels the rest."""
    if n <= 1:
        return await call_one(0)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(call_one(i)) for i in range(n)]
    images: list[GeneratedImage] = []
    for task in tasks:
        images.extend(task.result())
    return images
