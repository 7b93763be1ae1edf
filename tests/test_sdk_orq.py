"""The official orq SDK drives the gateway over HTTP into the fake OpenAI server."""

from __future__ import annotations

import base64
import json

import pytest
from fakes.openai import GATEWAY_KEY as KEY
from fakes.openai import FakeOpenAI, Reply, fetch_image
from imagekit import png
from live import LiveGateway
from orq_ai_sdk import Orq
from orq_ai_sdk.models import APIDefaultError

ROUTING = {
    "retry": {"count": 2, "on_codes": [429, 503]},
    "fallbacks": [{"model": "placeholder/backup"}],
    "cache": {"type": "exact_match"},
    "load_balancer": {"type": "weight_based", "models": [{"model": "openai/gpt-image-1"}]},
    "timeout": {"call_timeout": 30000},
    "identity": {"id": "user_1", "email": "ada@example.com", "metadata": [{"plan": "pro"}]},
    "name": "sdk-test",
}


def test_generations_sync(fake: FakeOpenAI, gw: LiveGateway) -> None:
    with Orq(api_key=KEY, server_url=gw.url) as orq:
        res = orq.router.images.generations.create(
            model="openai/gpt-image-1",
            prompt="a red fox",
            n=2,
            size="1024x1024",
            quality="low",
            output_format="png",
            orq=ROUTING,
            fallback_on_codes=[500, 502],
            metadata={"team": "growth"},
        )
    assert len(res.data) == 2
    assert base64.b64decode(res.data[0].b64_json or "") == png(0)
    assert res.usage is not None and res.usage.total_tokens == 50
    [sent] = fake.requests
    assert sent.json == {
        "model": "gpt-image-1",
        "prompt": "a red fox",
        "n": 2,
        "size": "1024x1024",
        "quality": "low",
        "output_format": "png",
    }


def test_generations_dalle_url_and_null_fields(fake: FakeOpenAI, gw: LiveGateway) -> None:
    with Orq(api_key=KEY, server_url=gw.url) as orq:
        res = orq.router.images.generations.create(
            model="openai/dall-e-3",
            prompt="a fox",
            size=None,
            style="vivid",
            response_format="url",
        )
    assert fetch_image(res.data[0].url or "") == png(0)
    assert res.data[0].revised_prompt == "revised: a fox"
    assert fake.requests[0].json == {
        "model": "dall-e-3",
        "prompt": "a fox",
        "n": 1,
        "style": "vivid",
        "response_format": "url",
    }


def test_edits_sync_with_options(fake: FakeOpenAI, gw: LiveGateway) -> None:
    picture = png(3, 32)
    with Orq(api_key=KEY, server_url=gw.url) as orq:
        res = orq.router.images.edits.create(
            model="openai/gpt-image-1",
            prompt="add a hat",
            image={"file_name": "fox.png", "content": picture},
            quality="low",
            size="1024x1024",
            response_format="b64_json",  # never forwarded to gpt-image (the fake checks)
            retry={"count": 1},
            fallback_on_codes=[500, 529],
            cache={"type": "exact_match"},
            load_balancer=ROUTING["load_balancer"],
            timeout={"call_timeout": 20000},
            fallbacks=[{"model": "placeholder/b"}],
            name="edit-top",
            orq={**ROUTING, "prompt": {"id": "p_1", "version": "latest"}},
        )
    assert res.data[0].b64_json
    [sent] = fake.requests
    assert sent.fields == {
        "model": ["gpt-image-1"],
        "prompt": ["add a hat"],
        "n": ["1"],
        "size": ["1024x1024"],
        "quality": ["low"],
    }
    [image] = sent.files
    assert (image.field, image.filename, image.content_type) == ("image", "fox.png", "image/png")
    assert image.data == picture


def test_variations_sync(fake: FakeOpenAI, gw: LiveGateway) -> None:
    picture = png(5)
    with Orq(api_key=KEY, server_url=gw.url) as orq:
        res = orq.router.images.variations.create(
            model="openai/dall-e-2",
            image={"file_name": "a.png", "content": picture},
            response_format="b64_json",
            size="256x256",
            n=2,
            orq={"timeout": {"call_timeout": 9e3}},
        )
    assert [base64.b64decode(d.b64_json or "") for d in res.data] == [png(0), png(1)]
    [sent] = fake.requests
    assert sent.fields == {
        "model": ["dall-e-2"],
        "n": ["2"],
        "size": ["256x256"],
        "response_format": ["b64_json"],
    }
    assert [(f.field, f.data) for f in sent.files] == [("image", picture)]


async def test_all_three_async(fake: FakeOpenAI, gw: LiveGateway) -> None:
    picture = png(1)
    async with Orq(api_key=KEY, server_url=gw.url) as orq:
        gen = await orq.router.images.generations.create_async(
            model="openai/gpt-image-1", prompt="async fox", orq={"retry": {"count": 3}}
        )
        edit = await orq.router.images.edits.create_async(
            model="openai/gpt-image-1",
            prompt="async hat",
            image={"file_name": "in.png", "content": picture, "content_type": "image/png"},
        )
        var = await orq.router.images.variations.create_async(
            model="openai/dall-e-2", image={"file_name": "in.png", "content": picture}
        )
    assert gen.data[0].b64_json and edit.data[0].b64_json
    assert fetch_image(var.data[0].url or "") == png(0)
    operations = [r.path.rsplit("/", 1)[-1] for r in fake.requests]
    assert operations == ["generations", "edits", "variations"]
    assert [r.model for r in fake.requests] == ["gpt-image-1", "gpt-image-1", "dall-e-2"]
    # the orq SDK always sends response_format=url and size on variations: both forwarded
    assert fake.requests[2].field("response_format") == "url"


def test_placeholder_through_orq_sdk(gw: LiveGateway) -> None:
    with Orq(api_key=KEY, server_url=gw.url) as orq:
        res = orq.router.images.generations.create(
            model="placeholder/sketch", prompt="a fox", size="64x64", response_format="b64_json"
        )
    assert base64.b64decode(res.data[0].b64_json or "").startswith(b"\x89PNG")


def test_provider_error_keeps_status_and_message(fake: FakeOpenAI, gw: LiveGateway) -> None:
    message = "Your request was rejected as a result of our safety system."
    fake.script(
        Reply(
            400,
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "moderation_blocked",
                }
            },
        )
    )
    with Orq(api_key=KEY, server_url=gw.url) as orq, pytest.raises(APIDefaultError) as info:
        orq.router.images.generations.create(model="openai/gpt-image-1", prompt="x")
    assert info.value.status_code == 400
    assert json.loads(info.value.body)["error"]["message"] == message


@pytest.mark.parametrize("operation", ["generations", "edits", "variations"])
def test_ranges_the_sdk_does_not_check_are_400(gw: LiveGateway, operation: str) -> None:
    image = {"file_name": "a.png", "content": png()}
    calls = {
        "generations": lambda o: o.router.images.generations.create(
            model="openai/gpt-image-1", prompt="p", orq={"retry": {"count": 10}}
        ),
        "edits": lambda o: o.router.images.edits.create(
            model="openai/gpt-image-1", prompt="p", image=image, retry={"count": 10}
        ),
        "variations": lambda o: o.router.images.variations.create(
            model="openai/dall-e-2", image=image, orq={"retry": {"count": 10}}
        ),
    }
    with Orq(api_key=KEY, server_url=gw.url) as orq, pytest.raises(APIDefaultError) as info:
        calls[operation](orq)
    assert info.value.status_code == 400
    error = json.loads(info.value.body)["error"]
    assert error["param"] in ("retry.count", "orq.retry.count")
    assert error["code"] == "invalid_request_body"
