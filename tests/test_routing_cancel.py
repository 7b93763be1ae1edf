"""A client that goes away cancels its in-flight upstream attempt or its backoff, end to end
(docs/routing.md, "Cancellation").

The client is a raw socket: it sends the request, waits until the gateway is where the test
wants it (the upstream holds the attempt; the gateway has chosen a backoff), then closes. What
happened next is read from the fake upstream and from the request's trace, which is only
written once the request is over, so "nothing was tried after the client left" needs no clock.
"""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fakes.faulty import FaultyUpstream, fail, hang
from live import live_gateway
from waiting import wait_until

from imagegate.gateway import Gateway
from imagegate.telemetry.trace import NullSink, TraceRecord


@pytest.fixture
def fake() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as server:
        yield server


class BackoffSignal(random.Random):
    """The gateway's jitter source (``Gateway(rng=...)``): drawing the backoff jitter is the
    last thing the gateway does before it sleeps, so it tells the test the wait has begun."""

    def __init__(self) -> None:
        super().__init__(1)
        self.drawn = threading.Event()

    def uniform(self, a: float, b: float) -> float:
        value = super().uniform(a, b)
        self.drawn.set()
        return value


def post_then_leave(port: int, body: dict[str, Any], ready: Callable[[], object]) -> bytes:
    """POST ``body``, close the connection once ``ready()`` holds; what came back before."""
    payload = json.dumps(body).encode()
    head = (
        "POST /v2/router/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + payload)
        wait_until(ready, "the gateway reached the point to leave at")
        sock.setblocking(False)
        try:
            early = sock.recv(65536)
        except BlockingIOError:
            early = b""
    return early


def wait_for_trace(sink: NullSink) -> TraceRecord:
    records: list[TraceRecord] = wait_until(lambda: list(sink.records), "a trace recorded")
    return records[-1]


@pytest.mark.parametrize("during", ["attempt", "backoff"])
def test_client_disconnect_cancels_upstream(
    fake: FaultyUpstream, make_config: Any, during: str
) -> None:
    orq: dict[str, Any] = {"retry": {"count": 3}, "fallbacks": [{"model": "b/m2"}]}
    rng = BackoffSignal()
    if during == "attempt":
        fake.script("a/m1", then=hang(30.0))  # answers only if nobody cancels it
        ready: Callable[[], object] = lambda: fake.received("a/m1")  # noqa: E731
        routing = {"backoff_base_s": 0.01}
    else:  # a 429 without Retry-After: the gateway backs off for ~20 s, then would retry
        fake.script("a/m1", fail(429))
        ready = rng.drawn.is_set
        routing = {"backoff_base_s": 20.0}
    config = make_config(providers=fake.providers("a", "b"), routing=routing)
    sink = NullSink()
    with live_gateway(config, Gateway(config, traces=sink, rng=rng)) as gw:
        body = {"model": "a/m1", "prompt": "a slow fox", "orq": orq}
        assert post_then_leave(gw.port, body, ready) == b""  # left before any answer
        trace = wait_for_trace(sink)  # the request is over
        # nothing was tried after the client left: no retry, no fallback
        assert [r.key for r in fake.received()] == ["a/m1"]
        assert len(trace.attempts) == 1
        if during == "attempt":
            # the upstream saw its connection dropped long before its answer was due
            assert fake.wait_for(lambda: fake.received("a/m1")[0].outcome == "dropped", 20)
    [last] = trace.attempts
    if during == "attempt":
        assert (last["status"], last["code"], last["next"]) == (
            499,
            "client_closed_request",
            "fail",
        )
    else:
        assert (last["status"], last["next"]) == (429, "retry")
        assert 15_000 <= last["wait_ms"] <= 25_000  # the wait that was cut short
