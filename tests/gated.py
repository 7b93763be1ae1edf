"""A fake OpenAI that holds its answers until the test opens a gate, and a /metrics reader.

The gate is an ``asyncio.Event`` on the fake's own loop: a held request waits on it, never on
a clock, so "a 5-s upstream call" is simply one the test has not released yet::

    with GatedOpenAI() as fake:
        ...                                  # send a request; it reaches the fake and waits
        wait_until(lambda: fake.arrived == 1)
        fake.release()                       # every held request (and any later one) answers
"""

from __future__ import annotations

import asyncio
import re

import httpx
from aiohttp import web
from fakes.openai import FakeOpenAI


class GatedOpenAI(FakeOpenAI):
    def __init__(self, api_key: str = "sk-upstream") -> None:
        super().__init__(api_key)
        self.arrived = 0  # upstream calls that reached the fake (held or not)
        self._held = True
        self._gate: asyncio.Event | None = None  # made on the fake's loop

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.arrived += 1
        if self._held:
            if self._gate is None:
                self._gate = asyncio.Event()
            await self._gate.wait()
        return await super()._handle(request)

    def release(self) -> None:
        """Answer every held request now, and every later one at once."""

        def open_gate() -> None:
            self._held = False
            if self._gate is not None:
                self._gate.set()

        self._server.loop.call_soon_threadsafe(open_gate)

    def hold(self) -> None:
        """Hold the requests that arrive from now on."""

        def close_gate() -> None:
            self._held = True
            self._gate = None

        self._server.loop.call_soon_threadsafe(close_gate)


def metric(base_url: str, name: str, headers: dict[str, str] | None = None) -> float:
    """One sample of the gateway's /metrics (the first line naming it exactly)."""
    text = httpx.get(f"{base_url}/metrics", headers=headers or {}, timeout=10).text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))
