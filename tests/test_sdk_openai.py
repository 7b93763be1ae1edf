"""The official openai SDK drives the gateway (base /v2/router and /v1) into the fake OpenAI."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator

import openai
import pytest
from fakes.openai import GATEWAY_KEY as KEY
from fakes.openai import FakeOpenAI, Reply, fetch_image
from imagekit import png
from live import LiveGateway

ORQ = {
    "retry": {"count": 2, "on_codes": [429, 500]},
    "fallbacks": [{"model": "placeholder/a"}, {"model": "placeholder/b"}],
    "cache": {"type": "exact_match", "ttl": 60},
    "load_balancer": {
        "type": "weight_based",
        "models": [{"model": "openai/gpt-image-1", "weight": 0.4}],
    },
    "identity": {"id": "u1", "tags": ["x", "y"], "metadata": {"plan": "pro"}},
    "timeout": {"call_timeout": 20000},
}


@pytest.fixture(params=["/v2/router", "/v1"])
def client(request: pytest.FixtureRequest, gw: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=gw.url + request.param, max_retries=0) as c:
        yield c


@pytest.fixture(params=["/v2/router", "/v1"])
async def aclient(
    request: pytest.FixtureRequest, gw: LiveGateway
) -> AsyncIterator[openai.AsyncOpenAI]:
    base_url = gw.url + request.param
    async with openai.AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0) as c:
        yield c


@pytest.fixture
def prompt(request: pytest.FixtureRequest) -> str:
    """A prompt unique to the test, so the shared gateway's cache never answers for the fake."""
    return f"a fox ({request.node.name})"


def test_generate(fake: FakeOpenAI, client: openai.OpenAI, prompt: str) -> None:
    res = client.images.generate(
        model="openai/gpt-image-1",
        prompt=prompt,
        n=2,
        background="transparent",
        output_format="webp",
        output_compression=50,
        moderation="low",
        extra_body={"orq": ORQ, "fallback_on_codes": [500, 503], "name": "gen"},
    )
    assert res.data is not None and len(res.data) == 2
    assert base64.b64decode(res.data[1].b64_json or "") == png(1)
    assert res.usage is not None and res.usage.input_tokens_details.text_tokens == 10
    assert fake.requests[0].json == {
        "model": "gpt-image-1",
        "prompt": prompt,
        "n": 2,
        "background": "transparent",
        "output_format": "webp",
        "output_compression": 50,
        "moderation": "low",
    }


def test_generate_never_forwards_response_format_to_gpt_image(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    res = client.images.generate(model="openai/gpt-image-1", prompt="x", response_format="url")
    assert res.data is not None and fetch_image(res.data[0].url or "") == png(0)
    assert "response_format" not in (fake.requests[0].json or {})


def test_edit_several_images_and_mask(fake: FakeOpenAI, client: openai.OpenAI, prompt: str) -> None:
    a, b, mask = png(1), png(2), png(9)
    res = client.images.edit(
        model="openai/gpt-image-1",
        prompt=prompt,
        n=2,
        size="1024x1024",
        image=[("a.png", a, "image/png"), ("b.png", b, "image/png")],
        mask=("mask.png", mask, "image/png"),
        extra_body={"orq": ORQ, "fallback_on_codes": [500, 502], "timeout": {"call_timeout": 5e3}},
    )
    assert res.data is not None and len(res.data) == 2
    [sent] = fake.requests
    assert sent.fields == {
        "model": ["gpt-image-1"],
        "prompt": [prompt],
        "n": ["2"],
        "size": ["1024x1024"],
    }
    assert [(f.field, f.filename, f.data) for f in sent.files] == [
        ("image[]", "a.png", a),
        ("image[]", "b.png", b),
        ("mask", "mask.png", mask),
    ]


def test_create_variation(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    picture = png(4)
    res = client.images.create_variation(
        model="openai/dall-e-2",
        image=("in.png", picture, "image/png"),
        n=1,
        size="512x512",
        response_format="b64_json",
        extra_body={"orq": {"name": "var", "retry": {"count": 1}}},
    )
    assert res.data is not None and res.data[0].b64_json
    [sent] = fake.requests
    assert sent.fields == {
        "model": ["dall-e-2"],
        "n": ["1"],
        "size": ["512x512"],
        "response_format": ["b64_json"],
    }
    assert [(f.field, f.data) for f in sent.files] == [("image", picture)]


def test_invalid_option_in_extra_body_is_400(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """Bracket-encoded options (openai's multipart style) are validated, not dropped."""
    with pytest.raises(openai.BadRequestError) as info:
        client.images.edit(
            model="openai/gpt-image-1",
            prompt="x",
            image=("a.png", png(), "image/png"),
            extra_body={"orq": {"retry": {"count": 9}}},
        )
    error = info.value.body
    assert isinstance(error, dict)
    assert (error["param"], error["code"]) == ("orq.retry.count", "invalid_request_body")
    assert fake.requests == []


def test_wrong_key_is_authentication_error(gw: LiveGateway) -> None:
    with openai.OpenAI(api_key="sk-wrong", base_url=gw.url + "/v1", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as info:
            c.images.generate(model="placeholder/x", prompt="x")
    assert info.value.status_code == 401


# --- AsyncOpenAI ---------------------------------------------------------------------------
async def test_async_generate(fake: FakeOpenAI, aclient: openai.AsyncOpenAI, prompt: str) -> None:
    res = await aclient.images.generate(
        model="openai/gpt-image-1",
        prompt=prompt,
        n=2,
        quality="low",
        extra_body={"orq": {"retry": {"count": 1}, "name": "async-gen"}},
    )
    assert res.data is not None and len(res.data) == 2
    assert [base64.b64decode(d.b64_json or "") for d in res.data] == [png(0), png(1)]
    assert fake.requests[0].json == {
        "model": "gpt-image-1",
        "prompt": prompt,
        "n": 2,
        "quality": "low",
    }


async def test_async_edit(fake: FakeOpenAI, aclient: openai.AsyncOpenAI, prompt: str) -> None:
    a, mask = png(3), png(9)
    res = await aclient.images.edit(
        model="openai/gpt-image-1",
        prompt=prompt,
        image=("a.png", a, "image/png"),
        mask=("mask.png", mask, "image/png"),
        extra_body={"orq": {"retry": {"count": 1}}},
    )
    assert res.data is not None and base64.b64decode(res.data[0].b64_json or "") == png(0)
    [sent] = fake.requests
    assert sent.fields == {"model": ["gpt-image-1"], "prompt": [prompt]}
    assert [(f.field, f.data) for f in sent.files] == [("image", a), ("mask", mask)]


# --- provider errors as the SDK's exception classes ----------------------------------------
def openai_error(status: int) -> Reply:
    """An error as OpenAI sends it (https://platform.openai.com/docs/guides/error-codes)."""
    body = {
        "error": {
            "message": f"upstream says {status}",
            "type": "upstream_error",
            "param": None,
            "code": f"upstream_{status}",
        }
    }
    return Reply(status, body=body)


@pytest.mark.parametrize(
    ("status", "exc", "code", "kind"),
    [
        (429, openai.RateLimitError, "rate_limit_exceeded", "rate_limit_error"),
        (500, openai.InternalServerError, "provider_error", "api_error"),
        (503, openai.InternalServerError, "provider_overloaded", "api_error"),
        (400, openai.BadRequestError, "provider_invalid_request", "invalid_request_error"),
    ],
)
def test_provider_errors_surface_as_sdk_errors(
    fake: FakeOpenAI,
    client: openai.OpenAI,
    prompt: str,
    status: int,
    exc: type[openai.APIStatusError],
    code: str,
    kind: str,
) -> None:
    """The provider's status reaches the caller (the SDK picks its exception class by status)
    with the orq error body: our code (never the provider's), the provider's message."""
    fake.script(openai_error(status), key="gpt-image-1")
    with pytest.raises(exc) as info:
        client.images.generate(model="openai/gpt-image-1", prompt=prompt)
    assert info.value.status_code == status
    error = info.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["type"], error["message"]) == (
        code,
        kind,
        f"upstream says {status}",
    )
    assert [(f["model"], f["status"]) for f in error["failures"]] == [
        ("openai/gpt-image-1", status)
    ]
    assert len(info.value.response.headers["x-orq-trace-id"]) == 26
    assert len(fake.requests) == 1  # no retry object: one attempt


async def test_async_client_gets_the_rate_limit_error(
    fake: FakeOpenAI, aclient: openai.AsyncOpenAI, prompt: str
) -> None:
    fake.script(openai_error(429), key="gpt-image-1")
    with pytest.raises(openai.RateLimitError) as info:
        await aclient.images.generate(model="openai/gpt-image-1", prompt=prompt)
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "rate_limit_exceeded"
