"""Run real HTTP servers for tests: the gateway (uvicorn) and fake upstreams (aiohttp).

Each runs in its own thread and event loop on 127.0.0.1 with an OS-chosen port, and stops
when the context exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiohttp import web

from imagegate.api.app import create_app
from imagegate.config import Config
from imagegate.gateway import Gateway

GEN = "/v2/router/images/generations"
EDITS = "/v2/router/images/edits"


def free_port() -> int:
    """A loopback port nothing listens on right now (refused at once; free to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment for an ``imagegate`` subprocess: ours without IMAGEGATE_*/OPENAI_*
    (they would override the test's config), data and blobs under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGATE_", "OPENAI_"))}
    env["IMAGEGATE_DATA_DIR"] = str(tmp_path / "data")
    env["IMAGEGATE_STORAGE_PATH"] = str(tmp_path / "blobs")
    env.update(extra)
    return env


def post(gw: LiveGateway, path: str, **kwargs: Any) -> httpx.Response:
    """POST to a running gateway (``path`` like ``GEN``), with a 10 s timeout."""
    return httpx.post(f"{gw.url}{path}", timeout=10, **kwargs)


class LiveGateway:
    """The imagegate ASGI app served by uvicorn on a free port."""

    def __init__(self, config: Config, gateway: Gateway | None = None) -> None:
        self.config = config
        self.gateway = gateway or Gateway(config)
        self.app = create_app(config, gateway=self.gateway)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveGateway:
        cfg = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            loop="asyncio",
            lifespan="on",
        )
        self._server = uvicorn.Server(cfg)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        for _ in range(500):
            if self._server.started and self._server.servers:
                break
            threading.Event().wait(0.01)
        else:
            raise RuntimeError("gateway did not start")
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=15)


class LiveAiohttp:
    """An aiohttp ``web.Application`` (a fake provider) on a free port in its own thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _start(self) -> int:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    def __enter__(self) -> LiveAiohttp:
        self._thread.start()
        self.port = self.call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                self.call(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@contextlib.contextmanager
def live_gateway(config: Config, gateway: Gateway | None = None) -> Iterator[LiveGateway]:
    with LiveGateway(config, gateway) as server:
        yield server
