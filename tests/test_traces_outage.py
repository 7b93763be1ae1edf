"""PostgreSQL stopped for a few seconds during a burst: every request is answered and every
trace reaches the database once it is back.

The shared PostgreSQL on :5432 is never touched: the test runs its own throwaway cluster
(initdb into a temp dir, its own port and socket dir), stops and starts it with its own
pg_ctl, and removes it afterwards.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from live import GEN, live_gateway


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A private PostgreSQL cluster in a temp dir (run as ``postgres`` when we are root)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="imagegate-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-l",
            str(self.root / "log"),
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    bin_dir = _pg_bin()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("no PostgreSQL server binaries to run a private cluster")
    c = Cluster(bin_dir)
    try:
        c.init()
        c.start()
        yield c
    finally:
        c.remove()


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


def test_traces_survive_a_database_outage(make_config: Any, cluster: Cluster) -> None:
    total, workers = 160, 4
    config = make_config(database_url=cluster.dsn)
    answered: list[tuple[int, float, float]] = []  # (status, sent_at, latency_s)
    lock = threading.Lock()

    with live_gateway(config) as gw:
        writer = gw.gateway.control.writer
        queue = iter(range(total))

        def client() -> None:
            with httpx.Client(base_url=gw.url, timeout=30) as http:
                while True:
                    with lock:
                        i = next(queue, None)
                    if i is None:
                        return
                    body = {
                        "model": "placeholder/a",
                        "prompt": f"p{i}",
                        "size": "16x16",
                        "identity": {"id": f"u{i % 7}", "display_name": f"User {i}"},
                        "thread": {"id": f"t{i % 3}", "tags": [f"tag{i % 5}"]},
                    }
                    sent = time.monotonic()
                    r = http.post(GEN, json=body)
                    with lock:
                        answered.append((r.status_code, sent, time.monotonic() - sent))
                    time.sleep(0.1)  # spread the burst over before, during and after the outage

        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(client) for _ in range(workers)]
            time.sleep(0.3)
            cluster.stop()
            down_at = time.monotonic()
            while time.monotonic() - down_at < 3.0:  # a few seconds down; requests go on
                time.sleep(0.1)
                assert writer.dropped == 0  # traces wait in the buffer, none is lost
            up_at = time.monotonic()
            cluster.start()
            for f in futures:
                f.result(timeout=60)
        assert len(answered) == total
        assert all(status == 200 for status, _, _ in answered), answered
        during = [lat for _, sent, lat in answered if down_at <= sent < up_at]
        assert len(during) >= 10  # the burst really ran while the database was down
        assert max(during) < 1.0  # and the database is not on the request's path
        assert any(sent >= up_at for _, sent, _ in answered)  # and went on after it
        assert writer.failures > 0 and writer.dropped == 0

        deadline = time.monotonic() + 15
        count = 0
        while time.monotonic() < deadline:
            count = asyncio.run(_count(cluster.dsn, "SELECT COUNT(*) FROM traces"))
            if count == total:
                break
            time.sleep(0.1)
        assert count == total
        others = sorted(lat for _, sent, lat in answered if not down_at <= sent < up_at)
        print(
            f"outage: {len(during)} requests while down, max latency {max(during) * 1000:.0f} ms"
            f" (median {sorted(during)[len(during) // 2] * 1000:.0f} ms; outside the outage"
            f" max {others[-1] * 1000:.0f} ms, median {others[len(others) // 2] * 1000:.0f} ms),"
            f" {writer.failures} failed writes, all {total} traces written"
            f" {time.monotonic() - up_at:.2f} s after restart began"
        )
        assert asyncio.run(_count(cluster.dsn, "SELECT COUNT(*) FROM identities")) == 7
        assert asyncio.run(_count(cluster.dsn, "SELECT COUNT(*) FROM thread_tags")) == 15
        r = httpx.get(f"{gw.url}/v2/traces", params={"limit": 500}, timeout=30)
        assert r.status_code == 200 and len(r.json()["data"]) == total
