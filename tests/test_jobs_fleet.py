"""Jobs across real ``imagegate serve`` processes sharing one database and blob store.

A job submitted to one replica runs on whichever replica runs jobs; a replica killed with
SIGKILL in the middle of a job leaves a lease that lapses, and another replica runs the job
again — one upstream call per lease, both runs visible on the job, one webhook message.
Every wait is on a condition (the fake upstream's call count, the job's state).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobkit import MODEL, WHSEC, Client, Fleet, GatedOpenAI, Receiver
from standardwebhooks import Webhook
from waiting import wait_until

ADMIN = "sk-fleet-jobs"


@pytest.fixture
def upstream() -> Iterator[GatedOpenAI]:
    with GatedOpenAI() as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def fleet(tmp_path: Path, upstream: GatedOpenAI, database_url: str | None) -> Iterator[Fleet]:
    doc: dict[str, Any] = {
        "api_keys": [ADMIN],
        "data_dir": str(tmp_path / "data"),
        "storage": {"path": str(tmp_path / "blobs")},
        "signing_key": "fleet-jobs-signing-key-0123456789",
        "providers": upstream.providers(),
        "routing": {"backoff_base_s": 0.01},
        "fetch": {"allow_private": True},
        "jobs": {"poll_interval_s": 0.1, "lease_s": 1.0},
        "webhooks": {
            "secrets": {"main": WHSEC},
            "default_secret": "main",
            "backoff_base_s": 0.05,
        },
    }
    if database_url:
        doc["database_url"] = database_url
    made = Fleet(tmp_path, doc)
    yield made
    made.stop()


def body(receiver: Receiver) -> dict[str, Any]:
    return {
        "model": MODEL,
        "prompt": "a fox",
        "response_format": "b64_json",
        "orq": {"webhook": {"url": receiver.url}},
    }


def messages(receiver: Receiver) -> list[dict[str, Any]]:
    return [Webhook(WHSEC).verify(g.body, g.headers) for g in receiver.got]


def test_a_job_submitted_to_one_replica_runs_on_the_one_that_runs_jobs(
    fleet: Fleet, upstream: GatedOpenAI, receiver: Receiver
) -> None:
    a = Client(fleet.start("a", workers=0), ADMIN)
    b = Client(fleet.start("b", workers=2), ADMIN)
    job_id = a.submit(body(receiver)).json()["id"]
    done = wait_until(lambda: a.finished(job_id), "the job ends", timeout_s=60)
    wait_until(lambda: a.job(job_id)["webhook"]["status"] == "delivered", "delivered")
    assert done["status"] == "succeeded", done
    assert [r["worker"].split(":")[1] for r in done["runs"]] == [str(fleet.pid("b"))]
    assert b.job(job_id)["id"] == job_id  # every replica reads every job
    assert upstream.calls == 1
    assert [m["data"]["id"] for m in messages(receiver)] == [job_id]


def test_a_killed_workers_job_completes_on_another_replica_after_its_lease(
    fleet: Fleet, upstream: GatedOpenAI, receiver: Receiver
) -> None:
    upstream.hold = True
    a = Client(fleet.start("a", workers=1), ADMIN)
    job_id = a.submit(body(receiver)).json()["id"]
    wait_until(lambda: upstream.calls == 1, "replica a calls upstream", timeout_s=60)
    b = Client(fleet.start("b", workers=1), ADMIN)
    assert b.job(job_id)["status"] == "running"  # a's lease holds: b leaves it alone
    os.kill(fleet.pid("a"), signal.SIGKILL)
    fleet.procs["a"].wait(timeout=10)
    upstream.release()
    done = wait_until(lambda: b.finished(job_id), "the job ends on b", timeout_s=60)
    wait_until(lambda: b.job(job_id)["webhook"]["status"] == "delivered", "delivered")
    assert done["status"] == "succeeded", done
    runs = done["runs"]
    assert [r["outcome"] for r in runs] == ["lost", "succeeded"]
    assert [r["worker"].split(":")[1] for r in runs] == [str(fleet.pid(n)) for n in "ab"]
    assert upstream.calls == 2  # once per lease
    assert [m["data"]["id"] for m in messages(receiver)] == [job_id]
    trace = httpx.get(
        f"{b.url}/v2/traces/{runs[1]['trace_id']}", headers=b.headers, timeout=10
    ).json()
    assert any("this is a rerun" in n and runs[0]["trace_id"] in n for n in trace["notes"])


def test_the_jobs_cli_lists_shows_and_cancels(fleet: Fleet, receiver: Receiver) -> None:
    a = Client(fleet.start("a", workers=0), ADMIN)
    ids = [a.submit(body(receiver)).json()["id"] for _ in range(2)]
    listed = fleet.cli("a", "jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [j["id"] for j in json.loads(listed.stdout)] == ids[::-1]
    table = fleet.cli("a", "jobs", "list", "--status", "queued")
    assert table.returncode == 0 and all(i in table.stdout for i in ids)
    done = fleet.cli("a", "jobs", "cancel", ids[0])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "cancelled"
    assert a.job(ids[0])["status"] == "cancelled"  # the server reads the same store
    wait_until(lambda: a.job(ids[0])["webhook"]["status"] == "delivered", "delivered")
    shown = fleet.cli("a", "jobs", "show", ids[0])
    assert shown.returncode == 0 and json.loads(shown.stdout)["webhook"]["status"] == "delivered"
    again = fleet.cli("a", "jobs", "cancel", ids[0])
    assert again.returncode == 1 and "already cancelled" in again.stderr
    assert fleet.cli("a", "jobs", "show", "job_nope").returncode == 1
    assert fleet.cli("a", "jobs", "list", "--limit", "0").returncode == 2
    other = fleet.cli("a", "jobs", "list", "--json", "--workspace", "other")
    assert other.returncode == 0 and json.loads(other.stdout) == []


def test_a_replica_shutting_down_puts_its_running_job_back_at_once(
    fleet: Fleet, upstream: GatedOpenAI, receiver: Receiver
) -> None:
    """SIGTERM: the run is cancelled and the job queued again; with an hour-long lease the
    other replica could only run it this soon because it was put back."""
    upstream.hold = True
    a = Client(fleet.start("a", workers=1, lease_s=3600), ADMIN)
    job_id = a.submit(body(receiver)).json()["id"]
    wait_until(lambda: upstream.calls == 1, "replica a calls upstream", timeout_s=60)
    fleet.procs["a"].terminate()
    assert fleet.procs["a"].wait(timeout=30) == 0, fleet.log("a")
    wait_until(lambda: upstream.cancelled == 1, "a's upstream call is cancelled")
    upstream.release()
    b = Client(fleet.start("b", workers=1, lease_s=3600), ADMIN)
    done = wait_until(lambda: b.finished(job_id), "the job ends on b", timeout_s=60)
    assert done["status"] == "succeeded", done
    assert [r["outcome"] for r in done["runs"]] == ["interrupted", "succeeded"]
    assert upstream.calls == 2
