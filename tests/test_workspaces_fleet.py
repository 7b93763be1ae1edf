"""Rate limits, budgets and revocation across real ``imagegate serve`` processes.

Each test starts its gateways as subprocesses sharing one config (one SQLite store under a
shared ``data_dir``, and Redis when the test is about sharing), makes keys with the real CLI
(``imagegate keys create`` prints the key on its last line) and sends traffic over HTTP to a
fake OpenAI that counts what reaches it. Workspace names are fresh per test, so counters left
in the shared Redis by an earlier run never meet these.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fakes.openai import FakeOpenAI
from live import free_port

IMAGEGATE = str(Path(sys.executable).with_name("imagegate"))
ADMIN = "sk-fleet-admin"
BODY = {
    "model": "openai/dall-e-3",
    "prompt": "a fox",
    "size": "1024x1024",
    "response_format": "b64_json",
}
GEN = "/v2/router/images/generations"


class Fleet:
    """Gateways started from one config file; each is ended by its own PID."""

    def __init__(self, tmp: Path, fake: FakeOpenAI, *, redis: bool) -> None:
        self.tmp = tmp
        self.config = tmp / "imagegate.yaml"
        doc: dict[str, Any] = {
            "api_keys": [ADMIN],
            "data_dir": str(tmp / "data"),
            "storage": {"path": str(tmp / "blobs")},
            "signing_key": "fleet-test-signing-key-0123456789",
            "providers": fake.providers(),
            "routing": {"backoff_base_s": 0.01},
        }
        if redis:
            doc["redis_url"] = "redis://127.0.0.1:6379/0"
        self.config.write_text(yaml.safe_dump(doc))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGATE_", "OPENAI_"))}

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [IMAGEGATE, *args, "--config", str(self.config)],
            cwd=self.tmp,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def key(self, workspace: str, *flags: str) -> str:
        out = self.cli("keys", "create", "--workspace", workspace, "--name", "t", *flags)
        return out.strip().splitlines()[-1]

    def start(self, count: int) -> None:
        for _ in range(count):
            port = free_port()
            proc = subprocess.Popen(
                [IMAGEGATE, "serve", "--config", str(self.config), "--port", str(port)],
                cwd=self.tmp,
                env=self.env(),
                stdout=subprocess.DEVNULL,
                stderr=open(self.tmp / f"serve-{port}.log", "wb"),
            )
            self.procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, (self.tmp / f"serve-{port}.log").read_text()
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "imagegate serve did not come up"
                time.sleep(0.05)  # a poll interval while the process starts, not a sync point
            self.urls.append(url)

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


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fleet_of(tmp_path: Path, fake: FakeOpenAI) -> Iterator[Any]:
    made: list[Fleet] = []

    def make(count: int, *, redis: bool) -> Fleet:
        fleet = Fleet(tmp_path, fake, redis=redis)
        made.append(fleet)
        fleet.start(count)
        return fleet

    yield make
    for fleet in made:
        fleet.stop()


def post(url: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{url}{GEN}", json=BODY, timeout=60, headers={"Authorization": f"Bearer {key}"}
    )


@pytest.mark.parametrize(("replicas", "redis"), [(2, True), (1, False)])
def test_ten_requests_per_minute_across_replicas(
    fleet_of: Any, fake: FakeOpenAI, replicas: int, redis: bool
) -> None:
    fleet: Fleet = fleet_of(replicas, redis=redis)
    key = fleet.key(f"rl-{uuid.uuid4().hex[:12]}", "--rpm", "10")
    answers = [post(fleet.urls[i % replicas], key) for i in range(30)]
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {200: 10, 429: 20}, statuses
    refused = [r for r in answers if r.status_code == 429]
    for r in refused:
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert int(r.headers["retry-after"]) >= 1
    assert len(fake.requests) == 10  # a refused request never goes upstream
    ok = next(r for r in answers if r.status_code == 200)
    assert ok.headers["x-ratelimit-limit-requests"] == "10"
    assert refused[-1].headers["x-ratelimit-remaining-requests"] == "0"


def test_a_budget_holds_under_32_parallel_requests_on_two_replicas(
    fleet_of: Any, fake: FakeOpenAI
) -> None:
    fleet: Fleet = fleet_of(2, redis=True)
    workspace = f"bud-{uuid.uuid4().hex[:12]}"
    fleet.cli("workspaces", "create", workspace, "--budget-usd", "0.20/month")
    key = fleet.key(workspace)
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda i: post(fleet.urls[i % 2], key), range(32)))
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {200: 5, 429: 27}, statuses
    for r in answers:
        if r.status_code == 429:
            err = r.json()["error"]
            assert err["code"] == "budget_exceeded" and workspace in err["message"]
            assert int(r.headers["retry-after"]) >= 1
    assert len(fake.requests) == 5
    # The spend settled is what the traces cost: the usage API sums the traces; the budget,
    # settled at that amount, now refuses the next request on either replica.
    usage = httpx.get(
        f"{fleet.urls[0]}/v2/usage",
        params={"group_by": "key"},
        timeout=30,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert usage.status_code == 200, usage.text
    rows = usage.json()["data"]
    assert round(sum(row["cost_usd"] for row in rows), 6) == 0.2
    assert sum(row["requests"] for row in rows) == 32
    assert post(fleet.urls[1], key).status_code == 429
    assert len(fake.requests) == 5


def test_a_revoked_key_is_refused_by_every_replica_at_once(fleet_of: Any, fake: FakeOpenAI) -> None:
    fleet: Fleet = fleet_of(2, redis=False)
    key = fleet.key(f"rv-{uuid.uuid4().hex[:12]}")
    assert [post(url, key).status_code for url in fleet.urls] == [200, 200]
    listed = fleet.cli("keys", "list", "--json")
    assert key not in listed
    key_id = next(k["id"] for k in yaml.safe_load(listed) if key.startswith(k["prefix"][:14]))
    fleet.cli("keys", "revoke", key_id)
    after = [post(url, key) for url in fleet.urls]
    assert [r.status_code for r in after] == [401, 401]
    assert {r.json()["error"]["code"] for r in after} == {"invalid_api_key"}
    assert len(fake.requests) == 2
