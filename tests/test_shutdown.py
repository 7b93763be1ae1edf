"""SIGTERM on a real ``imagegate serve``: the drain a load balancer relies on.

The fake OpenAI holds every call until the test opens its gate (``gated.py``), so "requests
in flight" are exactly the ones it counted as arrived. Proved here: the first SIGTERM closes
the listener at once (new connections are refused, a balancer retries them elsewhere) while
the held requests all finish, their traces are in the store, and the process exits 0; past
``lifecycle.shutdown_grace_s`` the requests left are answered 503 server_shutting_down
(orq's body, and their traces say so); a second SIGTERM ends the process at once (143).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fleetkit import Replica, stored_traces, write_config
from gated import GatedOpenAI
from waiting import wait_until


@pytest.fixture
def fake() -> Iterator[GatedOpenAI]:
    with GatedOpenAI() as server:
        yield server
        server.release()  # nothing left waiting on the gate at shutdown
        assert server.violations == []


def config_for(tmp: Path, fake: GatedOpenAI, grace_s: float) -> Path:
    return write_config(
        tmp / "imagegate.yaml",
        {
            "data_dir": str(tmp / "data"),
            "storage": {"path": str(tmp / "blobs")},
            "providers": fake.providers(),
            "lifecycle": {"shutdown_grace_s": grace_s},
        },
    )


def in_flight(pool: ThreadPoolExecutor, replica: Replica, fake: GatedOpenAI, n: int) -> list[Any]:
    calls = [pool.submit(replica.post) for _ in range(n)]
    wait_until(lambda: fake.arrived == n, f"{n} calls held upstream", timeout_s=60)
    return calls


def test_sigterm_lets_requests_in_flight_finish_and_exits_0(
    tmp_path: Path, fake: GatedOpenAI
) -> None:
    config = config_for(tmp_path, fake, grace_s=120)
    replica = Replica(config, tmp_path).wait_up()
    try:
        with ThreadPoolExecutor(12) as pool:
            calls = in_flight(pool, replica, fake, 12)
            replica.signal(signal.SIGTERM)
            wait_until(replica.refuses, "listener closed on SIGTERM", timeout_s=30)
            assert replica.proc.poll() is None  # still serving the 12
            fake.release()
            answers = [call.result(timeout=120) for call in calls]
        assert replica.proc.wait(timeout=120) == 0, replica.log.read_text()
    finally:
        replica.stop()
    assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers]
    ids = [a.headers["x-orq-trace-id"] for a in answers]
    traces = stored_traces(config, ids)
    assert all(t is not None and t.status == 200 for t in traces.values()), traces
    assert len(fake.requests) == 12


def test_past_the_grace_what_is_left_is_answered_503_and_traced(
    tmp_path: Path, fake: GatedOpenAI
) -> None:
    config = config_for(tmp_path, fake, grace_s=1)
    replica = Replica(config, tmp_path).wait_up()
    try:
        with ThreadPoolExecutor(3) as pool:
            calls = in_flight(pool, replica, fake, 3)
            replica.signal(signal.SIGTERM)  # the gate stays shut: the grace runs out
            answers = [call.result(timeout=120) for call in calls]
        assert replica.proc.wait(timeout=120) == 0, replica.log.read_text()
    finally:
        replica.stop()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "server_shutting_down"
        assert answer.headers["connection"] == "close"
    traces = stored_traces(config, [a.headers["x-orq-trace-id"] for a in answers])
    for trace in traces.values():
        assert trace is not None
        assert (trace.status, trace.error_code) == (503, "server_shutting_down")
    assert "Exception in ASGI application" not in replica.log.read_text()


def test_a_second_sigterm_stops_waiting(tmp_path: Path, fake: GatedOpenAI) -> None:
    config = config_for(tmp_path, fake, grace_s=3600)
    replica = Replica(config, tmp_path).wait_up()
    try:
        with ThreadPoolExecutor(2) as pool:
            calls = in_flight(pool, replica, fake, 2)
            replica.signal(signal.SIGTERM)
            wait_until(replica.refuses, "listener closed on SIGTERM", timeout_s=30)
            replica.signal(signal.SIGTERM)  # the gate stays shut; an hour of grace is left
            code = replica.proc.wait(timeout=60)
            for call in calls:  # the connections went with the process
                with pytest.raises(httpx.TransportError):
                    call.result(timeout=60)
    finally:
        replica.stop()
    assert code == 128 + signal.SIGTERM, replica.log.read_text()  # 143: not a clean exit
