"""What the job and webhook tests share: an OpenAI-shaped upstream whose answers wait on a
gate, a webhook receiver, and the gateway processes of a fleet.

``GatedOpenAI`` answers ``POST /v1/images/{generations,edits}`` as OpenAI's Images API does
for ``gpt-image-1`` (``{created, data: [{b64_json}], usage}``,
https://platform.openai.com/docs/api-reference/images/create). While ``hold`` is set every
answer waits for ``release()`` — no timers — and the fake counts the calls it got and the
ones whose client went away (a cancelled upstream call). ``hold_s`` instead holds each answer
that long (load tests only). ``Receiver`` records every webhook POST and answers the scripted
statuses in turn (then 200).
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiohttp import web
from live import LiveAiohttp, free_port
from PIL import Image

IMAGEGATE = str(Path(sys.executable).with_name("imagegate"))
WHSEC = "whsec_" + base64.b64encode(b"imagegate-jobs-test-secret-0123").decode()
OTHER_WHSEC = "whsec_" + base64.b64encode(b"another-workspace-secret-456789").decode()
MODEL = "openai/gpt-image-1"
UPSTREAM_KEY = "sk-upstream-jobs"


def png(index: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), ((50 * index) % 256, 90, 160)).save(buf, "PNG")
    return buf.getvalue()


class _CancellingServer(LiveAiohttp):
    """``LiveAiohttp`` whose handlers are cancelled when their client goes away (aiohttp's
    ``handler_cancellation``), so the fake sees an upstream call being cancelled."""

    async def _start(self) -> int:
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]


class GatedOpenAI:
    def __init__(self, *, hold: bool = False, hold_s: float = 0.0) -> None:
        self.hold = hold
        self.hold_s = hold_s
        self.calls = 0
        self.cancelled = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.files: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/images/{operation}", self._handle)
        self._server = _CancellingServer(app)
        self._gate: asyncio.Event | None = None

    def __enter__(self) -> GatedOpenAI:
        self._server.__enter__()
        self._gate = self._server.call(self._make_gate())
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.__exit__(*exc)

    async def _make_gate(self) -> asyncio.Event:
        return asyncio.Event()

    @property
    def url(self) -> str:
        return self._server.url

    def providers(self) -> dict[str, Any]:
        return {"openai": {"api_key": UPSTREAM_KEY, "base_url": self.url + "/v1"}}

    def release(self) -> None:
        """Let every held answer (and every later one) go."""
        if self._gate is not None:
            self._server.loop.call_soon_threadsafe(self._gate.set)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {UPSTREAM_KEY}":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = {}
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                data = bytes(await part.read(decode=False))  # type: ignore[union-attr]
                if part.filename:  # type: ignore[union-attr]
                    self.files.append((part.name or "", data))  # type: ignore[union-attr]
                else:
                    body[part.name or ""] = data.decode()  # type: ignore[union-attr]
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.bodies.append(body)
        try:
            if self.hold and self._gate is not None:
                await self._gate.wait()
            elif self.hold_s:
                await asyncio.sleep(self.hold_s)  # load only: the upstream's own latency
        except asyncio.CancelledError:
            with self._lock:
                self.cancelled += 1
            raise
        finally:
            with self._lock:
                self.in_flight -= 1
        n = int(body.get("n") or 1)
        data = [{"b64_json": base64.b64encode(png(i)).decode()} for i in range(n)]
        usage = {
            "input_tokens": 10,
            "output_tokens": 20 * n,
            "total_tokens": 10 + 20 * n,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
        }
        return web.json_response({"created": int(time.time()), "data": data, "usage": usage})


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: records each POST, answers ``statuses`` then 200."""

    statuses: list[int] = field(default_factory=list)
    got: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._server = LiveAiohttp(app)

    def __enter__(self) -> Receiver:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self._server.url + "/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        self.got.append(Delivery(dict(request.headers), await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "no")


class Fleet:
    """``imagegate serve`` processes sharing one database, blob store and signing key."""

    def __init__(self, tmp: Path, doc: dict[str, Any]) -> None:
        self.tmp = tmp
        self.doc = doc
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}
        self._logs: list[Any] = []

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGATE_", "OPENAI_"))}

    def start(self, name: str, **jobs: Any) -> str:
        """Start gateway ``name`` with ``jobs`` settings over the shared config; its URL."""
        doc = {**self.doc, "jobs": {**self.doc.get("jobs", {}), **jobs}}
        config = self.tmp / f"{name}.yaml"
        config.write_text(yaml.safe_dump(doc))
        port = free_port()
        log = open(self.tmp / f"{name}.log", "wb")  # closed by ``stop``
        self._logs.append(log)
        proc = subprocess.Popen(
            [IMAGEGATE, "serve", "--config", str(config), "--port", str(port)],
            cwd=self.tmp,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        self.procs[name] = proc
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, self.log(name)
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "imagegate serve did not come up"
            time.sleep(0.05)  # a poll interval while the process starts, not a sync point
        self.urls[name] = url
        return url

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for log in self._logs:
            log.close()

    def cli(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``imagegate <args> --config <name's config>``."""
        return subprocess.run(
            [IMAGEGATE, *args, "--config", str(self.tmp / f"{name}.yaml")],
            cwd=self.tmp,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )


@dataclass
class Client:
    """Job calls against one gateway URL."""

    url: str
    key: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def submit(self, body: dict[str, Any], op: str = "generations", **kw: Any) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v2/jobs/images/{op}",
            json=body if op == "generations" else None,
            headers=self.headers,
            timeout=30,
            **kw,
        )

    def get(self, job_id: str) -> httpx.Response:
        return httpx.get(f"{self.url}/v2/jobs/{job_id}", headers=self.headers, timeout=30)

    def cancel(self, job_id: str) -> httpx.Response:
        return httpx.delete(f"{self.url}/v2/jobs/{job_id}", headers=self.headers, timeout=30)

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.get(job_id)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def finished(self, job_id: str) -> dict[str, Any] | None:
        """The job when it has finished, else None (for ``wait_until``)."""
        job = self.job(job_id)
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None


def member_key(url: str, admin: str, workspace: str) -> str:
    """A new member key of ``workspace`` (created when new), made through the admin API."""
    r = httpx.post(
        f"{url}/v2/admin/keys",
        json={"workspace": workspace, "name": "t"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key
