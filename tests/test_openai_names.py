"""Bare model names, aliases and defaults, driven by the official openai SDK (sync and async)
over real HTTP into the fake OpenAI: what an existing OpenAI client sends reaches the right
provider/model, and the trace says what was asked and what it became."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from fakes.openai import GATEWAY_KEY as KEY
from fakes.openai import FakeOpenAI, Reply
from imagekit import png
from live import LiveGateway, live_gateway, serve_env

from imagegate.config import ConfigError, load_config
from imagegate.gateway import Gateway

AUTH = {"authorization": f"Bearer {KEY}"}
ALIASES: dict[str, Any] = {
    "house": {
        "model": "openai/gpt-image-1",
        "params": {"output_format": "webp", "quality": "high"},
    },
    "chain": {"models": ["openai/gpt-image-1", "placeholder/chain"], "strategy": "fallback"},
    "spread": {
        "models": [
            {"model": "openai/gpt-image-1", "weight": 0.5},
            {"model": "openai/dall-e-2", "weight": 0.5},
        ],
        "orq": {"retry": {"count": 1, "on_codes": [503]}},
    },
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeOpenAI, LiveGateway]]:
    tmp = tmp_path_factory.mktemp("names")
    with FakeOpenAI() as fake:
        config = load_config(
            env={},
            overrides={
                "data_dir": str(tmp),
                "storage": {"path": str(tmp / "blobs")},
                "api_keys": [KEY],
                "providers": fake.providers(),
                "models": ALIASES,
                "defaults": {"model": {"edits": "house"}},
                "routing": {"backoff_base_s": 0.01},
            },
        )
        with live_gateway(config, Gateway(config, rng=random.Random(3))) as gw:
            yield fake, gw


@pytest.fixture
def fake(served: tuple[FakeOpenAI, LiveGateway]) -> Iterator[FakeOpenAI]:
    served[0].reset()
    yield served[0]
    assert served[0].violations == []


@pytest.fixture
def gw(served: tuple[FakeOpenAI, LiveGateway], fake: FakeOpenAI) -> LiveGateway:
    return served[1]


@pytest.fixture
def client(gw: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=gw.url + "/v1", max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(gw: LiveGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=gw.url + "/v1", max_retries=0) as c:
        yield c


def trace_of(gw: LiveGateway, headers: httpx.Headers) -> dict[str, Any]:
    r = httpx.get(f"{gw.url}/v2/traces/{headers['x-orq-trace-id']}", headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def test_bare_dall_e_3_is_served_by_openai(
    fake: FakeOpenAI, client: openai.OpenAI, gw: LiveGateway
) -> None:
    raw = client.images.with_raw_response.generate(
        model="dall-e-3", prompt="a bare fox", response_format="b64_json"
    )
    res = raw.parse()
    assert res.data is not None and base64.b64decode(res.data[0].b64_json or "") == png(0)
    assert [r.model for r in fake.requests] == ["dall-e-3"]
    assert raw.headers["x-orq-model"] == "openai/dall-e-3"
    trace = trace_of(gw, raw.headers)
    assert (trace["requested_model"], trace["served_model"]) == ("dall-e-3", "openai/dall-e-3")
    assert "model: 'dall-e-3' resolved to openai/dall-e-3 (default_provider)" in trace["notes"]


async def test_bare_gpt_image_1_async(fake: FakeOpenAI, aclient: openai.AsyncOpenAI) -> None:
    raw = await aclient.images.with_raw_response.generate(
        model="gpt-image-1", prompt="an async fox", quality="low"
    )
    res = raw.parse()
    assert res.data is not None and res.data[0].b64_json
    assert raw.headers["x-orq-model"] == "openai/gpt-image-1"
    assert fake.requests[0].json == {
        "model": "gpt-image-1",
        "prompt": "an async fox",
        "quality": "low",
    }


def test_no_model_gets_openais_default(
    fake: FakeOpenAI, client: openai.OpenAI, gw: LiveGateway
) -> None:
    """Generations without a model: dall-e-2, or gpt-image-1 once a GPT-image-only parameter
    is given (defaults.model.generations is unset and openai is configured)."""
    raw = client.images.with_raw_response.generate(prompt="no model", response_format="b64_json")
    assert raw.headers["x-orq-model"] == "openai/dall-e-2"
    assert "model" not in json.loads(raw.http_request.content)  # the SDK sent none
    trace = trace_of(gw, raw.headers)
    assert trace["requested_model"] is None
    assert "model: none asked; OpenAI's default is openai/dall-e-2" in trace["notes"]
    raw = client.images.with_raw_response.generate(prompt="no model", background="opaque")
    assert raw.headers["x-orq-model"] == "openai/gpt-image-1"
    assert [r.model for r in fake.requests] == ["dall-e-2", "gpt-image-1"]


async def test_no_model_on_edits_gets_the_configured_default(
    fake: FakeOpenAI, aclient: openai.AsyncOpenAI
) -> None:
    """defaults.model.edits names the alias ``house``: its model and its pins apply."""
    raw = await aclient.images.with_raw_response.edit(
        image=("a.png", png(1), "image/png"), prompt="edit me"
    )
    assert raw.headers["x-orq-model"] == "openai/gpt-image-1"
    [sent] = fake.requests
    assert sent.fields == {
        "model": ["gpt-image-1"],
        "prompt": ["edit me"],
        "quality": ["high"],
        "output_format": ["webp"],
    }


def test_alias_pins_win_over_the_body(
    fake: FakeOpenAI, client: openai.OpenAI, gw: LiveGateway
) -> None:
    raw = client.images.with_raw_response.generate(
        model="house", prompt="house style", output_format="png", n=2
    )
    assert raw.headers["x-orq-model"] == "openai/gpt-image-1"
    assert fake.requests[0].json == {
        "model": "gpt-image-1",
        "prompt": "house style",
        "n": 2,
        "output_format": "webp",
        "quality": "high",
    }
    notes = trace_of(gw, raw.headers)["notes"]
    assert "params: alias 'house' pins output_format='webp' (the request's 'png' replaced)" in notes
    assert "params: alias 'house' pins quality='high'" in notes


def test_alias_list_falls_back_in_order(
    fake: FakeOpenAI, client: openai.OpenAI, gw: LiveGateway
) -> None:
    fake.script(Reply(503), key="gpt-image-1")
    raw = client.images.with_raw_response.generate(
        model="chain", prompt="chain fox", response_format="b64_json"
    )
    assert raw.headers["x-orq-model"] == "placeholder/chain"
    assert [r.model for r in fake.requests] == ["gpt-image-1"]
    assert trace_of(gw, raw.headers)["requested_model"] == "chain"


def test_alias_list_load_balances_with_the_alias_routing(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    """The alias's orq retries on 503 (count 1): the drawn model is asked twice; then the
    request's own retry (on 429 only) replaces it, so a 503 falls back to the other model."""
    fake.script(Reply(503))  # the first request, whichever model was drawn
    raw = client.images.with_raw_response.generate(
        model="spread", prompt="spread 1", response_format="b64_json"
    )
    first = [r.model for r in fake.requests]
    assert len(first) == 2 and first[0] == first[1]  # retried, same model
    fake.reset()
    fake.script(Reply(503))  # the first request, whichever model was drawn
    raw = client.images.with_raw_response.generate(
        model="spread",
        prompt="spread 2",
        response_format="b64_json",
        extra_body={"orq": {"retry": {"count": 1, "on_codes": [429]}}},
    )
    both = [r.model for r in fake.requests]
    assert sorted(both) == ["dall-e-2", "gpt-image-1"]  # fell back across the list
    assert raw.headers["x-orq-model"] == f"openai/{both[1]}"


def test_fallbacks_may_name_bare_models(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.script(Reply(503), key="gpt-image-1")
    raw = client.images.with_raw_response.generate(
        model="gpt-image-1",
        prompt="fb",
        response_format="b64_json",
        extra_body={"orq": {"fallbacks": [{"model": "dall-e-3"}]}},
    )
    assert [r.model for r in fake.requests] == ["gpt-image-1", "dall-e-3"]
    assert raw.headers["x-orq-model"] == "openai/dall-e-3"
    with pytest.raises(openai.BadRequestError) as info:  # a list alias is no single fallback
        client.images.generate(
            model="gpt-image-1", prompt="fb", extra_body={"fallbacks": [{"model": "chain"}]}
        )
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "fallbacks[0].model"


# --- hostile input -------------------------------------------------------------------------
def test_a_10k_character_model_name_is_a_400(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model="m" * 10_000, prompt="x")
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "model"
    assert fake.requests == []


def test_unresolvable_names_without_openai(make_config: Any) -> None:
    """No openai entry and no default_provider: a bare name and a missing model are 400s
    naming ``model``, in orq's error body."""
    with live_gateway(make_config(api_keys=[KEY])) as gw:
        with openai.OpenAI(api_key=KEY, base_url=gw.url + "/v1", max_retries=0) as c:
            with pytest.raises(openai.BadRequestError) as bare:
                c.images.generate(model="dall-e-3", prompt="x")
            with pytest.raises(openai.BadRequestError) as none:
                c.images.generate(prompt="x")
    for info, code in ((bare, "unsupported_engine"), (none, "invalid_request_body")):
        body = info.value.body
        assert isinstance(body, dict)
        assert (body["param"], body["code"], body["type"]) == (
            "model",
            code,
            "invalid_request_error",
        )
    assert "no default_provider" in str(bare.value.body)


def test_default_provider_resolves_bare_names(make_config: Any) -> None:
    config = make_config(api_keys=[KEY], default_provider="placeholder")
    with live_gateway(config) as gw:
        body = {"model": "sketch", "prompt": "x", "response_format": "b64_json"}
        r = httpx.post(f"{gw.url}/v1/images/generations", headers=AUTH, timeout=10, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/sketch"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"models": {"h": {"model": "placeholder/x", "params": {"output_fromat": "webp"}}}},
            "models.h: params.output_fromat: not a parameter an alias may pin (did you mean "
            "output_format?)",
        ),
        (
            {"models": {"h": {"model": "placeholder/x", "params": {"quality": "ultra"}}}},
            "params.quality",
        ),
        ({"models": {"a": "b"}}, "not a provider/model name"),
        ({"models": {"a/b": "placeholder/x"}}, "without '/'"),
        ({"models": {"a": "nobody/x"}}, "models.a: 'nobody/x' names provider 'nobody'"),
        (
            {"models": {"a": {"model": "placeholder/x", "orq": {"identity": {"id": "u"}}}}},
            "orq.identity: an alias may set only",
        ),
        ({"default_provider": "nobody"}, "default_provider: no provider entry named 'nobody'"),
        ({"defaults": {"model": "sketch"}}, "defaults.model.generations: 'sketch' is neither"),
        (
            {"models": {"big": [f"placeholder/m{i}" for i in range(11)]}},
            "at most 10 models (limits.max_load_balancer_models)",
        ),
    ],
)
def test_bad_model_config_is_refused(
    make_config: Any, section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(**section)
    assert message in str(info.value)


def test_10k_aliases_stop_imagegate_serve(tmp_path: Path) -> None:
    """Counted before validation; ``imagegate serve`` exits 2 with one line naming the key."""
    aliases = {f"a{i}": "placeholder/x" for i in range(10_000)}
    config = tmp_path / "big.yaml"
    config.write_text(yaml.safe_dump({"models": aliases}))
    with pytest.raises(ConfigError, match=r"models: .*at most 1000 aliases"):
        load_config(config, env={})
    imagegate = str(Path(sys.executable).with_name("imagegate"))
    done = subprocess.run(
        [imagegate, "serve", "--config", str(config)],
        cwd=tmp_path,
        env=serve_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "models:" in lines[0] and "10000" in lines[0], done.stderr


def test_load_balancer_names_resolve_and_the_model_is_not_needed(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    """With a load balancer the request's model is ignored (docs/routing.md): none is needed,
    and the balancer's bare names resolve like the model's."""
    raw = client.images.with_raw_response.generate(
        prompt="lb fox",
        response_format="b64_json",
        extra_body={"load_balancer": [{"type": "weight_based", "model": "dall-e-3", "weight": 1}]},
    )
    assert raw.headers["x-orq-model"] == "openai/dall-e-3"
    assert [r.model for r in fake.requests] == ["dall-e-3"]
