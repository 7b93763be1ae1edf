"""Option precedence seen end to end: what reaches the provider and the trace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.openai import FakeOpenAI
from live import GEN, LiveGateway, live_gateway

from imagegate.gateway import Gateway
from imagegate.telemetry.trace import NullSink, TraceRecord


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
        assert server.violations == []


@pytest.fixture
def sink() -> NullSink:
    return NullSink()


@pytest.fixture
def gw(fake: FakeOpenAI, sink: NullSink, make_config: Any) -> Iterator[LiveGateway]:
    config = make_config(providers=fake.providers())
    with live_gateway(config, Gateway(config, traces=sink)) as server:
        yield server


def _trace(sink: NullSink) -> TraceRecord:
    deadline = time.monotonic() + 2
    while not sink.records and time.monotonic() < deadline:
        time.sleep(0.01)
    return sink.records[-1]


def _post(gw: LiveGateway, body: dict[str, Any]) -> httpx.Response:
    r = httpx.post(gw.url + GEN, json={"model": "openai/gpt-image-1", "prompt": "p", **body})
    assert r.status_code == 200, r.text
    return r


def test_top_level_load_balancer_list_wins_over_orq_object(
    fake: FakeOpenAI, gw: LiveGateway
) -> None:
    orq_lb = {"type": "weight_based", "models": [{"model": "openai/dall-e-3", "weight": 1}]}
    r = _post(
        gw,
        {
            "load_balancer": [{"type": "weight_based", "model": "openai/dall-e-2"}],
            "orq": {"load_balancer": orq_lb},
        },
    )
    assert r.headers["x-orq-model"] == "openai/dall-e-2"
    _post(gw, {"orq": {"load_balancer": orq_lb}})
    assert [req.model for req in fake.requests] == ["dall-e-2", "dall-e-3"]


def test_name_and_identity_precedence_on_the_trace(gw: LiveGateway, sink: NullSink) -> None:
    _post(
        gw,
        {
            "name": "top-name",
            "orq": {"name": "orq-name", "contact": {"id": "c1"}, "identity": {"id": "i1"}},
        },
    )
    trace = _trace(sink)
    assert (trace.name, trace.identity_id) == ("top-name", "i1")
    sink.records.clear()
    _post(gw, {"orq": {"contact": {"id": "c2"}}})
    trace = _trace(sink)
    assert (trace.name, trace.identity_id) == ("images.generations", "c2")


def test_nulls_never_reach_the_provider(fake: FakeOpenAI, gw: LiveGateway) -> None:
    _post(
        gw,
        {
            "n": None,
            "size": None,
            "quality": None,
            "orq": None,
            "retry": None,
            "metadata": None,
            "user": "u-1",
        },
    )
    assert fake.requests[0].json == {"model": "gpt-image-1", "prompt": "p", "user": "u-1"}
