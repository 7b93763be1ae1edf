"""Routing driven by real clients: the official orq SDK and the openai SDK, over real HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from fakes.faulty import FaultyUpstream, fail, reset
from live import LiveGateway, live_gateway
from orq_ai_sdk import Orq
from orq_ai_sdk.models import OrqError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def fake() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as server:
        yield server


@pytest.fixture
def gw(fake: FaultyUpstream, make_config: Any) -> Iterator[LiveGateway]:
    with live_gateway(make_config(providers=fake.providers("a", "b"))) as live:
        yield live


def test_orq_sdk_retry_then_fallback(fake: FaultyUpstream, gw: LiveGateway) -> None:
    fake.script("a/m1", then=fail(503))
    with Orq(api_key="k", server_url=gw.url) as orq:
        res = orq.router.images.generations.create(
            model="a/m1",
            prompt="a lighthouse at dusk",
            response_format="b64_json",
            orq={"retry": {"count": 2, "on_codes": [503]}, "fallbacks": [{"model": "b/m2"}]},
        )
    assert res.data is not None and res.data[0].b64_json is not None
    assert base64.b64decode(res.data[0].b64_json).startswith(PNG_MAGIC)
    assert [r.key for r in fake.received()] == ["a/m1"] * 3 + ["b/m2"]
    # the SDK sent floats (count 2.0, on_codes [503.0]); the gateway read them as integers
    assert fake.received("b/m2")[0].values["prompt"] == "a lighthouse at dusk"


def test_orq_sdk_sees_every_failure(fake: FaultyUpstream, gw: LiveGateway) -> None:
    fake.script("a/m1", then=fail(429, message="slow down"))
    fake.script("b/m2", then=reset())
    with Orq(api_key="k", server_url=gw.url) as orq, pytest.raises(OrqError) as info:
        orq.router.images.generations.create(
            model="a/m1",
            prompt="a lighthouse",
            orq={"retry": {"count": 1}, "fallbacks": [{"model": "b/m2"}]},
        )
    assert info.value.status_code == 502
    error = json.loads(info.value.body)["error"]
    assert error["code"] == "provider_error"
    assert [(f["model"], f["status"]) for f in error["failures"]] == [
        ("a/m1", 429),
        ("a/m1", 429),
        ("b/m2", None),
        ("b/m2", None),
    ]
    assert error["failures"][0]["message"] == "slow down"


def test_openai_sdk_with_orq_extra_body(fake: FaultyUpstream, gw: LiveGateway) -> None:
    fake.script("b/m2", fail(429))
    client = openai.OpenAI(api_key="k", base_url=gw.url + "/v2/router", max_retries=0)
    raw = client.images.with_raw_response.generate(
        model="a/ignored",
        prompt="a paper boat",
        extra_body={
            "orq": {
                "load_balancer": {"type": "weight_based", "models": [{"model": "b/m2"}]},
                "retry": {"count": 1},
                "fallbacks": [{"model": "a/m1"}],
            }
        },
    )
    assert raw.headers["x-orq-model"] == "b/m2"
    assert raw.headers["x-orq-attempts"] == "2"
    images = raw.parse()
    assert images.data is not None and images.data[0].b64_json is not None
    assert base64.b64decode(images.data[0].b64_json).startswith(PNG_MAGIC)
    assert [r.key for r in fake.received()] == ["b/m2", "b/m2"]


def test_openai_sdk_gets_the_provider_status(fake: FaultyUpstream, gw: LiveGateway) -> None:
    fake.script("a/m1", fail(400, message="prompt rejected by the provider"))
    client = openai.OpenAI(api_key="k", base_url=gw.url + "/v2/router", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(
            model="a/m1", prompt="x", extra_body={"orq": {"fallbacks": [{"model": "b/m2"}]}}
        )
    assert info.value.status_code == 400
    assert "prompt rejected by the provider" in str(info.value)
    assert [r.key for r in fake.received()] == ["a/m1"]


def test_orq_sdk_top_level_routing_fields(fake: FaultyUpstream, gw: LiveGateway) -> None:
    fake.script("a/m1", fail(400, message="a/m1 refuses this prompt"))
    with Orq(api_key="k", server_url=gw.url) as orq:
        res = orq.router.images.generations.create(
            model="a/m1",
            prompt="a lighthouse",
            fallbacks=[{"model": "b/m2"}],
            fallback_on_codes=[400],  # 400 now moves on (not in the default list)
        )
    assert res.data is not None and len(res.data) == 1
    assert [r.key for r in fake.received()] == ["a/m1", "b/m2"]
