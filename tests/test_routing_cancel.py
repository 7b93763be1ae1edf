"""A client that goes away cancels its in-flight upstream attempt, end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.faulty import FaultyUpstream, fail, hang
from live import live_gateway

from imagegate.gateway import Gateway
from imagegate.telemetry.trace import NullSink


@pytest.fixture
def fake() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as server:
        yield server


def wait_for_trace(sink: NullSink, timeout_s: float = 3.0) -> Any:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if sink.records:
            return sink.records[-1]
        time.sleep(0.01)
    raise AssertionError("no trace recorded")


@pytest.mark.parametrize("during", ["attempt", "backoff"])
def test_client_disconnect_cancels_upstream(
    fake: FaultyUpstream, make_config: Any, during: str
) -> None:
    if during == "attempt":
        fake.script("a/m1", then=hang(1.0))
        orq: dict[str, Any] = {"retry": {"count": 3}, "fallbacks": [{"model": "b/m2"}]}
    else:  # the client leaves while the gateway waits out a Retry-After
        fake.script("a/m1", fail(429, retry_after="0.6"))
        orq = {"retry": {"count": 3}, "fallbacks": [{"model": "b/m2"}]}
    config = make_config(providers=fake.providers("a", "b"))
    sink = NullSink()
    with live_gateway(config, Gateway(config, traces=sink)) as gw:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{gw.url}/v2/router/images/generations",
                json={"model": "a/m1", "prompt": "a slow fox", "orq": orq},
                timeout=httpx.Timeout(5.0, read=0.3),
            )
        first = fake.received("a/m1")[0]
        if during == "attempt":
            # the upstream saw its connection dropped well before its 1 s answer was due
            assert fake.wait_for(lambda: first.outcome == "dropped", 2.0)
            assert time.monotonic() - started < 0.9
        trace = wait_for_trace(sink)
        # nothing was tried after the client left: no retry, no fallback
        # (the retry would have been sent 0.6 s after the first answer)
        time.sleep(max(0.1, started + 0.75 - time.monotonic()))
        assert [r.model for r in fake.received()] == ["a/m1"]
    last = trace.attempts[-1]
    if during == "attempt":
        assert (last["status"], last["code"], last["next"]) == (
            499,
            "client_closed_request",
            "fail",
        )
    else:
        assert (last["status"], last["next"]) == (429, "retry")
