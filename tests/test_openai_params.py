"""Every parameter of OpenAI's Images API is accepted, through the official openai SDK (sync and
async): passed to the models that take it, translated where a model names it otherwise,
left out (and noted on the trace) where a model has no equivalent. The fake OpenAI answers
400 to a parameter the model does not take, as OpenAI does (``fakes.openai.model_rules``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from fakes.openai import GATEWAY_KEY as KEY
from fakes.openai import FakeOpenAI
from imagekit import png
from live import LiveGateway

AUTH = {"authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(gw: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=gw.url + "/v1", max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(gw: LiveGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=gw.url + "/v1", max_retries=0) as c:
        yield c


@pytest.fixture
def prompt(request: pytest.FixtureRequest) -> str:
    """Unique per test: the shared gateway's cache never answers for the fake."""
    return f"params ({request.node.name})"


def notes(gw: LiveGateway, headers: httpx.Headers) -> list[str]:
    r = httpx.get(f"{gw.url}/v2/traces/{headers['x-orq-trace-id']}", headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    found: list[str] = r.json()["notes"]
    return found


def test_every_generation_parameter_reaches_gpt_image(
    fake: FakeOpenAI, client: openai.OpenAI, gw: LiveGateway, prompt: str
) -> None:
    raw = client.images.with_raw_response.generate(
        model="gpt-image-1",
        prompt=prompt,
        n=1,
        size="1536x1024",
        quality="hd",
        style="vivid",
        background="transparent",
        moderation="low",
        output_format="webp",
        output_compression=70,
        response_format="url",
        user="end-user-7",
    )
    assert raw.parse().data
    assert fake.requests[0].json == {
        "model": "gpt-image-1",
        "prompt": prompt,
        "n": 1,
        "size": "1536x1024",
        "quality": "high",
        "background": "transparent",
        "moderation": "low",
        "output_format": "webp",
        "output_compression": 70,
        "user": "end-user-7",
    }
    said = notes(gw, raw.headers)
    assert "params: quality='hd' sent to gpt-image-1 as 'high'" in said
    assert "params: style='vivid' ignored: gpt-image-1 does not take it" in said
    assert not any("response_format" in n for n in said)  # answered as asked, by the gateway


async def test_dall_e_3_gets_its_own_words(
    fake: FakeOpenAI, aclient: openai.AsyncOpenAI, gw: LiveGateway, prompt: str
) -> None:
    raw = await aclient.images.with_raw_response.generate(
        model="dall-e-3",
        prompt=prompt,
        quality="high",
        style="natural",
        background="opaque",
        moderation="auto",
        output_format="png",
        output_compression=10,
        size="1792x1024",
        response_format="b64_json",
        user="u",
    )
    assert raw.parse().data
    assert fake.requests[0].json == {
        "model": "dall-e-3",
        "prompt": prompt,
        "size": "1792x1024",
        "quality": "hd",
        "style": "natural",
        "response_format": "b64_json",
        "user": "u",
    }
    said = notes(gw, raw.headers)
    for name in ("background", "moderation", "output_format", "output_compression"):
        assert any(n.startswith(f"params: {name}=") and "ignored" in n for n in said), name


def test_dall_e_2_takes_standard_quality_only(
    fake: FakeOpenAI, client: openai.OpenAI, prompt: str
) -> None:
    client.images.generate(
        model="dall-e-2", prompt=prompt, quality="low", response_format="b64_json"
    )
    client.images.generate(
        model="dall-e-2", prompt=prompt + "!", quality="standard", response_format="b64_json"
    )
    assert [r.json.get("quality") for r in fake.requests] == [None, "standard"]


async def test_input_fidelity_on_edits(
    fake: FakeOpenAI, aclient: openai.AsyncOpenAI, gw: LiveGateway, prompt: str
) -> None:
    image = ("a.png", png(2), "image/png")
    await aclient.images.edit(
        model="gpt-image-1", prompt=prompt, image=image, input_fidelity="high", user="u"
    )
    raw = await aclient.images.with_raw_response.edit(
        model="gpt-image-1-mini", prompt=prompt, image=image, input_fidelity="high"
    )
    await aclient.images.edit(
        model="dall-e-2",
        prompt=prompt,
        image=image,
        input_fidelity="low",
        response_format="b64_json",
    )
    sent = [(r.model, r.field("input_fidelity"), r.field("user")) for r in fake.requests]
    assert sent == [
        ("gpt-image-1", "high", "u"),
        ("gpt-image-1-mini", None, None),
        ("dall-e-2", None, None),
    ]
    assert "params: input_fidelity='high' ignored: gpt-image-1-mini does not take it" in notes(
        gw, raw.headers
    )


def test_variations_pass_user(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    client.images.create_variation(
        image=("v.png", png(5), "image/png"), user="end-user", response_format="b64_json"
    )  # no model: OpenAI's default, dall-e-2
    [sent] = fake.requests
    assert sent.fields == {
        "model": ["dall-e-2"],
        "user": ["end-user"],
        "response_format": ["b64_json"],
    }


def test_a_value_no_candidate_takes_is_a_400_only_then(
    fake: FakeOpenAI, client: openai.OpenAI, prompt: str
) -> None:
    """``size: auto``: DALL·E 3 has no auto size, so the fallback that has one serves; alone
    it is a 400 naming ``size``, and nothing is sent upstream."""
    raw = client.images.with_raw_response.generate(
        model="dall-e-3",
        prompt=prompt,
        size="auto",
        extra_body={"orq": {"fallbacks": [{"model": "gpt-image-1"}]}},
    )
    assert raw.headers["x-orq-model"] == "openai/gpt-image-1"
    assert [r.model for r in fake.requests] == ["gpt-image-1"]
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model="dall-e-3", prompt=prompt, size="auto")
    body = info.value.body
    assert isinstance(body, dict) and (body["param"], body["code"]) == (
        "size",
        "unsupported_engine",
    )
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quality", "ultra"),
        ("style", "loud"),
        ("background", "clear"),
        ("moderation", "high"),
        ("output_compression", 101),
        ("input_fidelity", "max"),
        ("n", 11),
    ],
)
def test_values_openai_never_takes_are_400(
    fake: FakeOpenAI, gw: LiveGateway, field: str, value: Any
) -> None:
    body = {"model": "gpt-image-1", "prompt": "x", field: value}
    if field == "input_fidelity":  # an edits parameter: sent as a multipart field
        files = {"image": ("a.png", png(1), "image/png")}
        data = {k: str(v) for k, v in body.items()}
        r = httpx.post(f"{gw.url}/v1/images/edits", headers=AUTH, data=data, files=files)
    else:
        r = httpx.post(f"{gw.url}/v1/images/generations", headers=AUTH, json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == field, r.text
    assert fake.requests == []
