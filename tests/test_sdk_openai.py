"""The official openai SDK drives the gateway (base /v2/router and /v1) into the fake OpenAI."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import openai
import pytest
from fakes.openai import GATEWAY_KEY as KEY
from fakes.openai import FakeOpenAI, fetch_image, tiny_png
from live import LiveGateway

ORQ = {
    "retry": {"count": 2, "on_codes": [429, 500]},
    "fallbacks": [{"model": "placeholder/a"}, {"model": "placeholder/b"}],
    "cache": {"type": "exact_match", "ttl": 60},
    "load_balancer": {"type": "weight_based",
                      "models": [{"model": "openai/gpt-image-1", "weight": 0.4}]},
    "identity": {"id": "u1", "tags": ["x", "y"], "metadata": {"plan": "pro"}},
    "timeout": {"call_timeout": 20000},
}  # fmt: skip


@pytest.fixture(params=["/v2/router", "/v1"])
def client(request: pytest.FixtureRequest, gw: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=gw.url + request.param, max_retries=0) as c:
        yield c


@pytest.fixture
def prompt(request: pytest.FixtureRequest) -> str:
    """A prompt unique to the test, so the shared gateway's cache never answers for the fake."""
    return f"a fox ({request.node.name})"


def test_generate(fake: FakeOpenAI, client: openai.OpenAI, prompt: str) -> None:
    res = client.images.generate(
        model="openai/gpt-image-1", prompt=prompt, n=2, background="transparent",
        output_format="webp", output_compression=50, moderation="low",
        extra_body={"orq": ORQ, "fallback_on_codes": [500, 503], "name": "gen"},
    )  # fmt: skip
    assert res.data is not None and len(res.data) == 2
    assert base64.b64decode(res.data[1].b64_json or "") == tiny_png(1)
    assert res.usage is not None and res.usage.input_tokens_details.text_tokens == 10
    assert fake.requests[0].json == {
        "model": "gpt-image-1", "prompt": prompt, "n": 2, "background": "transparent",
        "output_format": "webp", "output_compression": 50, "moderation": "low",
    }  # fmt: skip


def test_generate_never_forwards_response_format_to_gpt_image(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    res = client.images.generate(model="openai/gpt-image-1", prompt="x", response_format="url")
    assert res.data is not None and fetch_image(res.data[0].url or "") == tiny_png(0)
    assert "response_format" not in (fake.requests[0].json or {})


def test_edit_several_images_and_mask(
    fake: FakeOpenAI, client: openai.OpenAI, prompt: str
) -> None:
    a, b, mask = tiny_png(1), tiny_png(2), tiny_png(9)
    res = client.images.edit(
        model="openai/gpt-image-1", prompt=prompt, n=2, size="1024x1024",
        image=[("a.png", a, "image/png"), ("b.png", b, "image/png")],
        mask=("mask.png", mask, "image/png"),
        extra_body={"orq": ORQ, "fallback_on_codes": [500, 502], "timeout": {"call_timeout": 5e3}},
    )  # fmt: skip
    assert res.data is not None and len(res.data) == 2
    [sent] = fake.requests
    assert sent.fields == {
        "model": ["gpt-image-1"], "prompt": [prompt], "n": ["2"], "size": ["1024x1024"],
    }  # fmt: skip
    assert [(f.field, f.filename, f.data) for f in sent.files] == [
        ("image[]", "a.png", a), ("image[]", "b.png", b), ("mask", "mask.png", mask),
    ]  # fmt: skip


def test_create_variation(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    png = tiny_png(4)
    res = client.images.create_variation(
        model="openai/dall-e-2", image=("in.png", png, "image/png"), n=1, size="512x512",
        response_format="b64_json", extra_body={"orq": {"name": "var", "retry": {"count": 1}}},
    )  # fmt: skip
    assert res.data is not None and res.data[0].b64_json
    [sent] = fake.requests
    assert sent.fields == {
        "model": ["dall-e-2"], "n": ["1"], "size": ["512x512"], "response_format": ["b64_json"],
    }  # fmt: skip
    assert [(f.field, f.data) for f in sent.files] == [("image", png)]


def test_invalid_option_in_extra_body_is_400(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """Bracket-encoded options (openai's multipart style) are validated, not dropped."""
    with pytest.raises(openai.BadRequestError) as info:
        client.images.edit(
            model="openai/gpt-image-1", prompt="x", image=("a.png", tiny_png(), "image/png"),
            extra_body={"orq": {"retry": {"count": 9}}},
        )  # fmt: skip
    error = info.value.body
    assert isinstance(error, dict)
    assert (error["param"], error["code"]) == ("orq.retry.count", "invalid_request_body")
    assert fake.requests == []


def test_wrong_key_is_authentication_error(gw: LiveGateway) -> None:
    with openai.OpenAI(api_key="sk-wrong", base_url=gw.url + "/v1", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as info:
            c.images.generate(model="placeholder/x", prompt="x")
    assert info.value.status_code == 401
