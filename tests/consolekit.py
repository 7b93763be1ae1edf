"""Helpers for the console tests: a real ``imagegate serve`` process, keys made through the
admin API, and a headless Chromium driven by Playwright (Debian's ``chromium`` binary).

Screenshots are written to ``docs/console/`` only when ``CONSOLE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from live import free_port, serve_env

IMAGEGATE = str(Path(sys.executable).with_name("imagegate"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ADMIN_KEY = "sk-console-admin"
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"
DEADLINE_S = 20.0
LOADED = """sel => { const imgs = [...document.querySelectorAll(sel)];
    return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }"""


def wait_until(predicate: Any, what: str, timeout_s: float = DEADLINE_S) -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded)."""
    end = time.monotonic() + timeout_s
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Served:
    """A running ``imagegate serve`` and the admin key that reaches it."""

    def __init__(self, url: str, proc: subprocess.Popen[str]) -> None:
        self.url = url
        self.proc = proc

    def api(self, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.api(ADMIN_KEY, method, path, **kwargs)

    def new_key(self, workspace: str, role: str = "member") -> str:
        r = self.admin(
            "POST",
            "/v2/admin/keys",
            json={"workspace": workspace, "name": "console test", "role": role},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["key"])

    def call(self, key: str, body: dict[str, Any]) -> httpx.Response:
        return self.api(key, "POST", "/v2/router/images/generations", json=body)


@contextmanager
def serve(tmp: Path, providers: dict[str, Any], **extra: Any) -> Iterator[Served]:
    """``imagegate serve`` on a free port with ``providers``; stopped by its own PID."""
    port = free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "api_keys": [ADMIN_KEY],
        "providers": providers,
        "routing": {"backoff_base_s": 0.01, "max_retry_after_s": 0.1},
        "data_dir": str(tmp / "data"),
        "access_log": False,
        **extra,
    }
    path = tmp / "imagegate.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [IMAGEGATE, "serve", "--config", str(path)],
        cwd=tmp,
        env=serve_env(tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            return httpx.get(url + "/health", timeout=0.5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(up, "imagegate serve to answer /health")
        yield Served(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def screenshot(page: Any, name: str) -> None:
    if os.environ.get("CONSOLE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, url: str, key: str) -> None:
    page.goto(url + "/console/traces")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/traces")


def image_loaded(page: Any, selector: str, timeout_ms: int = 15_000) -> None:
    """Wait until every image matching ``selector`` has decoded (naturalWidth > 0)."""
    page.wait_for_function(LOADED, arg=selector, timeout=timeout_ms)
