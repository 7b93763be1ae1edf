"""Idempotency keys across real ``imagegate serve`` processes sharing one Redis.

Each gateway is a subprocess (ended by its own PID) with the records in Redis under a prefix
fresh per test; the fake OpenAI runs in the test process and holds its answers until the
test opens its gate (``gated.py``). Proved here: a replay works on a replica that never saw
the call; a request on replica B waits for the same key running on replica A; a replica
killed mid-call leaves a marker that lapses after the lease, so a retry runs again; every
record is small (images by reference) and expires.
"""

from __future__ import annotations

import base64
import concurrent.futures
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from gated import GatedOpenAI, metric
from imagekit import png
from live import GEN, free_port
from waiting import wait_until

IMAGEGATE = str(Path(sys.executable).with_name("imagegate"))
REDIS_URL = "redis://127.0.0.1:6379/0"
BODY = {"model": "openai/gpt-image-1", "prompt": "a lighthouse at dusk"}


class Fleet:
    """Gateways started from one config file; ``kill`` and ``stop`` use their own PIDs."""

    def __init__(self, tmp: Path, fake: GatedOpenAI, **idempotency: Any) -> None:
        self.tmp = tmp
        self.prefix = f"igtest:idem:{uuid.uuid4().hex[:12]}:"
        self.config = tmp / "imagegate.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(tmp / "data"),
                    "storage": {"path": str(tmp / "blobs")},
                    "signing_key": "idem-fleet-signing-key-0123456789",
                    "providers": fake.providers(),
                    "redis_url": REDIS_URL,
                    "idempotency": {"prefix": self.prefix, **idempotency},
                }
            )
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    def start(self, count: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGATE_", "OPENAI_"))}
        for _ in range(count):
            port = free_port()
            log = self.tmp / f"serve-{port}.log"
            proc = subprocess.Popen(
                [IMAGEGATE, "serve", "--config", str(self.config), "--port", str(port)],
                cwd=self.tmp,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(log, "wb"),
            )
            self.procs.append(proc)
            url = f"http://127.0.0.1:{port}"

            def up(proc: subprocess.Popen[bytes] = proc, url: str = url, log: Path = log) -> bool:
                assert proc.poll() is None, log.read_text()
                try:
                    return httpx.get(f"{url}/health", timeout=1).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(up, "imagegate serve up", timeout_s=60, every_s=0.05)
            self.urls.append(url)

    def kill(self, index: int) -> None:
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        client = redis.Redis.from_url(REDIS_URL)
        for name in client.scan_iter(f"{self.prefix}*"):
            client.delete(name)
        client.close()


@pytest.fixture
def fake() -> Iterator[GatedOpenAI]:
    with GatedOpenAI() as server:
        server.release()
        yield server
        server.release()  # nothing left waiting on the gate at shutdown
        assert server.violations == []


@pytest.fixture
def fleet_of(tmp_path: Path, fake: GatedOpenAI) -> Iterator[Callable[..., Fleet]]:
    made: list[Fleet] = []

    def make(count: int, **idempotency: Any) -> Fleet:
        fleet = Fleet(tmp_path, fake, **idempotency)
        made.append(fleet)
        fleet.start(count)
        return fleet

    yield make
    for fleet in made:
        fleet.stop()


def keyed(url: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(
        f"{url}{GEN}", json=body or BODY, headers={"Idempotency-Key": key}, timeout=60
    )


def test_a_replay_and_a_wait_work_across_two_processes(
    fleet_of: Callable[..., Fleet], fake: GatedOpenAI
) -> None:
    fleet = fleet_of(2)
    a, b = fleet.urls
    first = keyed(a, "across-1")
    assert first.status_code == 200, first.text
    replayed = keyed(b, "across-1")  # B never saw the call
    assert replayed.status_code == 200 and replayed.content == first.content
    assert replayed.headers["idempotent-replayed"] == "true"
    assert keyed(b, "across-1", {**BODY, "prompt": "else"}).status_code == 422
    assert len(fake.requests) == 1
    # the same key running on A while B is asked: B waits for A's answer
    fake.hold()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        on_a = pool.submit(keyed, a, "across-2")
        wait_until(lambda: fake.arrived == 2, "A's call upstream")
        on_b = pool.submit(keyed, b, "across-2")
        wait_until(lambda: metric(b, "imagegate_idempotency_waiting") == 1, "B waits")
        fake.release()
        ra, rb = on_a.result(), on_b.result()
    assert ra.status_code == rb.status_code == 200 and ra.content == rb.content
    assert rb.headers["idempotent-replayed"] == "true"
    assert fake.arrived == len(fake.requests) == 2


def test_a_replica_killed_mid_call_leaves_a_marker_that_lapses(
    fleet_of: Callable[..., Fleet], fake: GatedOpenAI
) -> None:
    fleet = fleet_of(2, lease_s=1)
    a, b = fleet.urls
    fake.hold()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        lost = pool.submit(keyed, a, "orphan")
        wait_until(lambda: fake.arrived == 1, "A's call upstream")
        marker = redis.Redis.from_url(REDIS_URL)
        [name] = marker.scan_iter(f"{fleet.prefix}*")  # A's in-flight marker: a short lease
        assert marker.get(name).startswith(b"R") and 0 < marker.pttl(name) <= 1000
        marker.close()
        fleet.kill(0)  # SIGKILL: no chance to free the key
        with pytest.raises(httpx.TransportError):
            lost.result()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        retry = pool.submit(keyed, b, "orphan")  # waits until the lease lapses, then runs
        wait_until(lambda: fake.arrived == 2, "B runs the call again")
        fake.release()
        answer = retry.result()
    assert answer.status_code == 200 and "idempotent-replayed" not in answer.headers
    assert base64.b64decode(answer.json()["data"][0]["b64_json"]) == png(0)
    assert keyed(b, "orphan").content == answer.content
    assert fake.arrived == 2


def test_redis_records_are_small_and_expire(
    fleet_of: Callable[..., Fleet], fake: GatedOpenAI
) -> None:
    fleet = fleet_of(2, ttl_s=3600)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: keyed(fleet.urls[i % 2], f"flood-{i}"), range(40)))
    assert {r.status_code for r in answers} == {200}
    client = redis.Redis.from_url(REDIS_URL)
    names = list(client.scan_iter(f"{fleet.prefix}*"))
    assert len(names) == 40 == len(fake.requests)
    image_b64 = base64.b64encode(png(0))[:40]
    for name in names:
        value = client.get(name)
        assert value is not None and len(value) < 1024 and image_b64 not in value
        assert 0 < client.ttl(name) <= 3600
    client.close()
    assert keyed(fleet.urls[0], "flood-7").content == answers[7].content
