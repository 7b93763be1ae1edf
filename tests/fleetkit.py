"""Real ``imagegate serve`` processes for the fleet and shutdown tests.

Each replica is a subprocess started from a config file, ended by its own PID; its stderr
goes to a log file the test can show. Nothing here waits for a length of time: starting
polls ``/health/live``, and ``refuses`` asks the kernel whether the listener is closed.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from live import GEN, free_port
from waiting import wait_until

from imagegate.config import load_config
from imagegate.store import open_store
from imagegate.store.records import TraceRecord

IMAGEGATE = str(Path(sys.executable).with_name("imagegate"))
BODY = {"model": "openai/gpt-image-1", "prompt": "a lighthouse at dusk"}


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


class Replica:
    def __init__(
        self, config: Path, tmp: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"serve-{self.port}.log"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGATE_", "OPENAI_"))},
            **(env or {}),
        }
        command = [IMAGEGATE, "serve", "--config", str(config), "--port", str(self.port), *args]
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                command, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=err
            )

    def wait_up(self) -> Replica:
        def up() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                return httpx.get(f"{self.url}/health/live", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, f"imagegate serve on {self.port} up", timeout_s=90, every_s=0.05)
        return self

    def post(self, body: dict[str, Any] | None = None, timeout: float = 120) -> httpx.Response:
        return httpx.post(f"{self.url}{GEN}", json=body or BODY, timeout=timeout)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def refuses(self) -> bool:
        """Whether a new connection is refused now (the listener is closed)."""
        with socket.socket() as sock:
            sock.settimeout(5)
            try:
                sock.connect(("127.0.0.1", self.port))
            except OSError as exc:
                return exc.errno == errno.ECONNREFUSED
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def stored_traces(config: Path, trace_ids: list[str]) -> dict[str, TraceRecord | None]:
    """The traces as the store has them, read by the test itself (no gateway involved)."""

    async def read() -> dict[str, TraceRecord | None]:
        store = open_store(load_config(config, env={}))
        try:
            return {tid: await store.get_trace("default", tid) for tid in trace_ids}
        finally:
            await store.close()

    return asyncio.run(read())
