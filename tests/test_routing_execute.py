"""Retries, fallbacks, timeouts, Retry-After and the deadline, end to end over real HTTP.

The gateway runs under uvicorn; providers a, b, c are one fault-injecting fake upstream
(tests/fakes/faulty.py) speaking OpenAI's images wire format. The rules are in
docs/routing.md.

No test asserts that something was quick: a wait that must not happen is shown by what the
gateway did instead (the trace's attempts, the answer a hang would have replaced), and the
client's timeout only guards against a hang. The only clock readings are lower bounds on
waits the gateway must make (Retry-After, backoff), which a busy machine can only lengthen.
"""

from __future__ import annotations

import base64
import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.faulty import FaultyUpstream, fail, hang, reset, truncated
from live import LiveGateway, live_gateway
from waiting import wait_until

from imagegate.config import load_config
from imagegate.gateway import Gateway
from imagegate.telemetry.trace import NullSink, TraceRecord

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as server:
        yield server


@pytest.fixture
def fake(upstream: FaultyUpstream) -> FaultyUpstream:
    upstream.reset()
    return upstream


class Served:
    """A live gateway over the fake, with its traces at hand."""

    def __init__(self, live: LiveGateway, sink: NullSink) -> None:
        self.live, self.sink = live, sink
        self.last_trace_id: str | None = None

    def post(self, **body: Any) -> httpx.Response:
        payload = {"prompt": "a red fox", "response_format": "b64_json", **body}
        response = httpx.post(
            f"{self.live.url}/v2/router/images/generations", json=payload, timeout=10
        )
        self.last_trace_id = response.headers.get("x-orq-trace-id")
        return response

    def trace(self) -> TraceRecord:
        """The last response's trace (written off the hot path, so wait for it)."""

        def found() -> TraceRecord | None:
            return next((r for r in self.sink.records if r.id == self.last_trace_id), None)

        return wait_until(found, f"trace {self.last_trace_id} recorded")

    def attempts(self, key: str) -> list[Any]:
        return [a[key] for a in self.trace().attempts]


def _start(fake: FaultyUpstream, root: Path, routing: dict[str, Any]) -> tuple[Any, Served]:
    config = load_config(
        env={},
        overrides={
            "data_dir": str(root / "data"),
            "storage": {"path": str(root / "blobs")},
            "providers": fake.providers("a", "b", "c"),
            "routing": {"backoff_base_s": 0.01, "max_retry_after_s": 1.0, **routing},
        },
    )
    sink = NullSink()
    ctx = live_gateway(config, Gateway(config, traces=sink, rng=random.Random(1)))
    return ctx, Served(ctx.__enter__(), sink)


@pytest.fixture(scope="module")
def shared(upstream: FaultyUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One gateway with the default test routing settings, shared by the module's tests."""
    ctx, served = _start(upstream, tmp_path_factory.mktemp("gw"), {})
    yield served
    ctx.__exit__(None, None, None)


@pytest.fixture
def serve(fake: FaultyUpstream, shared: Served, tmp_path: Path) -> Iterator[Any]:
    """``serve(**routing)`` → a running gateway on the fake (the shared one without overrides)."""
    own: list[Any] = []

    def start(**routing: Any) -> Served:
        if not routing:
            return shared
        ctx, served = _start(fake, tmp_path, routing)
        own.append(ctx)
        return served

    yield start
    for ctx in own:
        ctx.__exit__(None, None, None)


def seen(fake: FaultyUpstream) -> list[str]:
    return [r.key for r in fake.received()]


def error(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()["error"]
    return body


# --- retries ------------------------------------------------------------------------------


def test_retries_on_codes_then_succeeds(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", fail(503), fail(503))
    gw = serve()
    r = gw.post(model="a/m1", orq={"retry": {"count": 2, "on_codes": [503]}})
    assert r.status_code == 200, r.text
    assert base64.b64decode(r.json()["data"][0]["b64_json"]).startswith(PNG_MAGIC)
    assert r.headers["x-orq-model"] == "a/m1"
    assert r.headers["x-orq-attempts"] == "3"
    assert seen(fake) == ["a/m1"] * 3
    assert gw.attempts("next") == ["retry", "retry", "done"]
    assert gw.attempts("status") == [503, 503, 200]
    assert gw.attempts("attempt") == [1, 2, 3]


def test_retry_count_bounds_attempts_and_default_codes_are_429(
    fake: FaultyUpstream, serve: Any
) -> None:
    fake.script("a/m1", then=fail(429))
    gw = serve()
    r = gw.post(model="a/m1", retry={"count": 2})  # top-level twin of orq.retry
    assert r.status_code == 429
    assert error(r)["code"] == "rate_limit_exceeded"
    assert seen(fake) == ["a/m1"] * 3  # 1 + count
    assert len(error(r)["failures"]) == 3


def test_status_outside_on_codes_is_not_retried(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=fail(500, message="upstream exploded"))
    gw = serve()
    r = gw.post(model="a/m1", orq={"retry": {"count": 3}})  # on_codes default [429]
    assert r.status_code == 500
    assert error(r)["message"] == "upstream exploded"
    assert seen(fake) == ["a/m1"]


def test_no_retry_object_means_exactly_one_attempt(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=fail(429))
    fake.script("b/m2", then=hang(1.0))
    gw = serve()
    assert gw.post(model="a/m1").status_code == 429
    r = gw.post(model="b/m2", timeout={"call_timeout": 100})
    assert r.status_code == 504
    assert error(r)["code"] == "provider_timeout"
    assert seen(fake) == ["a/m1", "b/m2"]


def test_backoff_doubles_with_jitter(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", fail(503), fail(503), fail(503))
    gw = serve(backoff_base_s=0.04)
    r = gw.post(model="a/m1", orq={"retry": {"count": 3, "on_codes": [503]}})
    assert r.status_code == 200
    waits = gw.attempts("wait_ms")[:3]
    for k, wait in enumerate(waits, start=1):
        nominal = 40 * 2 ** (k - 1)
        assert 0.75 * nominal <= wait <= 1.25 * nominal, waits
    arrivals = [req.at for req in fake.received("a/m1")]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    for gap, wait in zip(gaps, waits, strict=True):
        assert gap >= wait / 1000 - 0.005, (gaps, waits)


def test_timeout_is_retried_then_falls_back(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=hang(1.0))
    gw = serve()
    r = gw.post(
        model="a/m1",
        orq={
            "retry": {"count": 1},
            "timeout": {"call_timeout": 150},
            "fallbacks": [{"model": "b/m2"}],
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "b/m2"
    assert r.headers["x-orq-attempts"] == "3"
    assert seen(fake) == ["a/m1", "a/m1", "b/m2"]
    assert gw.attempts("status") == [408, 408, 200]
    assert gw.attempts("code")[:2] == ["provider_timeout", "provider_timeout"]
    assert gw.attempts("next") == ["retry", "fallback", "done"]
    # the timed-out calls were abandoned: the fake saw both connections go away
    assert fake.wait_for(lambda: all(q.outcome == "dropped" for q in fake.received("a/m1")))


def test_connection_failures_are_retried(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", reset(), truncated())
    gw = serve()
    r = gw.post(model="a/m1", orq={"retry": {"count": 2}})
    assert r.status_code == 200, r.text
    assert [q.outcome for q in fake.received("a/m1")] == ["reset", "truncated", "answered"]
    assert gw.attempts("status") == [None, None, 200]
    assert gw.attempts("code")[:2] == ["provider_error", "provider_error"]


def test_retry_after_is_honoured(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", fail(429, retry_after="0.3"))
    gw = serve(backoff_base_s=0.001)
    r = gw.post(model="a/m1", orq={"retry": {"count": 1}})
    assert r.status_code == 200
    first, second = (q.at for q in fake.received("a/m1"))
    assert second - first >= 0.3  # it really waited; how much longer is the machine's business
    assert gw.attempts("wait_ms")[0] == 300


def test_retry_after_over_the_cap_ends_the_candidate(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=fail(429, retry_after="30"))
    gw = serve(max_retry_after_s=1.0)
    r = gw.post(model="a/m1", orq={"retry": {"count": 3}, "fallbacks": [{"model": "b/m2"}]})
    assert r.status_code == 200
    assert r.headers["x-orq-model"] == "b/m2"
    assert seen(fake) == ["a/m1", "b/m2"]  # retries left, but not worth a 30 s wait
    assert gw.attempts("next") == ["fallback", "done"]
    assert gw.attempts("wait_ms") == [None, None]  # moved on without waiting at all
    # without a fallback the 429 is answered
    fake.reset()
    fake.script("a/m1", then=fail(429, retry_after="30"))
    r = gw.post(model="a/m1", orq={"retry": {"count": 3}})
    assert r.status_code == 429
    assert seen(fake) == ["a/m1"]


# --- fallbacks ----------------------------------------------------------------------------


def test_fallbacks_are_tried_in_order(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", fail(503))
    fake.script("c/m3", fail(529))
    gw = serve()
    r = gw.post(model="a/m1", fallbacks=[{"model": "c/m3"}, {"model": "b/m2"}])
    assert r.status_code == 200
    assert r.headers["x-orq-model"] == "b/m2"
    assert seen(fake) == ["a/m1", "c/m3", "b/m2"]
    assert gw.attempts("next") == ["fallback", "fallback", "done"]


def test_retries_are_spent_before_falling_back(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=fail(429))
    gw = serve()
    r = gw.post(model="a/m1", orq={"retry": {"count": 2}, "fallbacks": [{"model": "b/m2"}]})
    assert r.status_code == 200
    assert seen(fake) == ["a/m1", "a/m1", "a/m1", "b/m2"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_answered_at_once(fake: FaultyUpstream, serve: Any, status: int) -> None:
    fake.script("a/m1", fail(status, message=f"provider says no ({status})"))
    gw = serve()
    r = gw.post(model="a/m1", orq={"retry": {"count": 3}, "fallbacks": [{"model": "b/m2"}]})
    assert r.status_code == status
    assert error(r)["message"] == f"provider says no ({status})"
    assert isinstance(error(r)["code"], str)
    assert seen(fake) == ["a/m1"]


def test_fallback_on_codes_overrides_the_default(fake: FaultyUpstream, serve: Any) -> None:
    gw = serve()
    fake.script("a/m1", fail(400))
    r = gw.post(model="a/m1", fallbacks=[{"model": "b/m2"}], fallback_on_codes=[400])
    assert r.status_code == 200
    assert r.headers["x-orq-model"] == "b/m2"
    fake.reset()
    fake.script("a/m1", fail(503))
    r = gw.post(model="a/m1", orq={"fallbacks": [{"model": "b/m2"}], "fallback_on_codes": [400]})
    assert r.status_code == 503  # no longer a fallback code
    assert seen(fake) == ["a/m1"]


def test_load_balancer_ignores_model(fake: FaultyUpstream, serve: Any) -> None:
    gw = serve()
    lb = {"type": "weight_based", "models": [{"model": "b/m2", "weight": 1}]}
    r = gw.post(model="nowhere/x", orq={"load_balancer": lb})
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "b/m2"
    assert seen(fake) == ["b/m2"]


def test_redraw_among_balanced_models_after_failure(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=fail(503))
    fake.script("b/m2", then=fail(502))
    gw = serve()
    lb = [{"type": "weight_based", "model": "a/m1"}, {"type": "weight_based", "model": "b/m2"}]
    for _ in range(4):
        fake.reset()
        fake.script("a/m1", then=fail(503))
        fake.script("b/m2", then=fail(502))
        r = gw.post(model="x", load_balancer=lb, fallbacks=[{"model": "a/m1"}, {"model": "c/m3"}])
        assert r.status_code == 200
        assert r.headers["x-orq-model"] == "c/m3"
        order = seen(fake)
        assert sorted(order[:2]) == ["a/m1", "b/m2"] and order[2:] == ["c/m3"]


def test_capability_skip_is_recorded(fake: FaultyUpstream, serve: Any) -> None:
    gw = serve()
    r = gw.post(model="a/dall-e-3", size="256x256", fallbacks=[{"model": "b/m2"}])
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "b/m2"
    assert seen(fake) == ["b/m2"]  # dall-e-3 cannot do 256x256: never sent
    assert gw.trace().skipped == [
        {"model": "a/dall-e-3", "reason": "does not support size 256x256"}
    ]
    r = gw.post(model="a/dall-e-3", size="256x256", fallbacks=[{"model": "zz/m"}])
    assert r.status_code == 400
    body = error(r)
    assert body["code"] == "unsupported_engine" and body["param"] == "model"
    assert "a/dall-e-3: does not support size 256x256" in body["message"]
    assert "zz/m: provider 'zz'" in body["message"]


# --- final failure and the deadline --------------------------------------------------------


def test_all_fail_lists_every_attempt(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=fail(503, message="a is down"))
    fake.script("b/m2", then=reset())
    gw = serve()
    r = gw.post(
        model="a/m1",
        orq={"retry": {"count": 1, "on_codes": [503]}, "fallbacks": [{"model": "b/m2"}]},
    )
    assert r.status_code == 502  # the last failure was a broken connection
    body = error(r)
    assert body["code"] == "provider_error" and body["type"] == "api_error"
    assert "x-orq-trace-id" in r.headers
    failures = body["failures"]
    assert [(f["model"], f["attempt"], f["status"]) for f in failures] == [
        ("a/m1", 1, 503),
        ("a/m1", 2, 503),
        ("b/m2", 1, None),
        ("b/m2", 2, None),
    ]
    for f in failures:
        assert set(f) == {"model", "attempt", "status", "code", "message", "duration_ms"}
        assert f["duration_ms"] >= 0
    assert failures[0]["message"] == "a is down"
    assert failures[0]["code"] == "provider_overloaded"


def test_all_fail_with_a_timeout_last_is_504(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=fail(500))
    fake.script("b/m2", then=hang(1.0))
    gw = serve()
    r = gw.post(model="a/m1", fallbacks=[{"model": "b/m2"}], timeout={"call_timeout": 100})
    assert r.status_code == 504
    assert error(r)["code"] == "provider_timeout"
    assert [f["status"] for f in error(r)["failures"]] == [500, 408]


def test_all_fail_keeps_the_last_status(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=fail(502))
    fake.script("b/m2", then=fail(429))
    gw = serve()
    r = gw.post(model="a/m1", fallbacks=[{"model": "b/m2"}])
    assert r.status_code == 429
    assert error(r)["code"] == "rate_limit_exceeded"


def test_overall_deadline_bounds_retries(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=fail(503, delay_s=0.15))
    fake.script("b/m2", then=hang(1.0))  # without the deadline: a 200 after 6 x 0.15 s + 1 s
    gw = serve(deadline_s=0.5)
    r = gw.post(
        model="a/m1",
        orq={"retry": {"count": 5, "on_codes": [503]}, "fallbacks": [{"model": "b/m2"}]},
    )
    assert r.status_code == 504
    assert error(r)["code"] == "provider_timeout"
    assert "deadline" in error(r)["message"]
    assert 1 <= len(fake.received("a/m1")) < 6  # the retries were cut short
    assert gw.attempts("status")[-1] in (503, 408)  # a 503 retry refused, or b/m2 cut off


def test_deadline_cuts_an_attempt_short(fake: FaultyUpstream, serve: Any) -> None:
    fake.script("a/m1", then=hang(8.0))  # without the deadline: a 200 after 8 s
    gw = serve(deadline_s=0.3)  # no call_timeout: the default 600 s would apply
    r = gw.post(model="a/m1", orq={"retry": {"count": 3}, "fallbacks": [{"model": "b/m2"}]})
    assert r.status_code == 504
    assert seen(fake) == ["a/m1"]  # nothing is left for a retry or the fallback
    assert fake.wait_for(lambda: fake.received("a/m1")[0].outcome == "dropped")
