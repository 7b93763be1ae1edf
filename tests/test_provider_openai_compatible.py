"""The generic ``openai-compatible`` adapter: any server speaking OpenAI's images API, reached
through a named config entry (``mylab: {type: openai-compatible, base_url}``) or an entry
named ``openai-compatible``; driven through the gateway over HTTP against a fake OpenAI."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import client
from fakes.core import Reply
from fakes.openai import FakeOpenAI
from imagekit import png
from live import LiveGateway, live_gateway


def lab(fake: FakeOpenAI, name: str = "mylab") -> dict[str, Any]:
    entry = {"type": "openai-compatible", "api_key": fake.api_key, "base_url": fake.url + "/v1"}
    return {name: entry}


fake, gw = client.fixtures(lambda: FakeOpenAI(api_key="lab-key"), lab)


def test_named_entry_generation(fake: FakeOpenAI, gw: LiveGateway) -> None:
    r = client.generate(
        gw.url,
        model="mylab/flux-dev",
        prompt="a fox",
        n=2,
        size="512x512",
        response_format="b64_json",
    )
    assert fake.violations == []
    assert len(client.answered_images(r)) == 2
    assert r.headers["x-orq-model"] == "mylab/flux-dev"
    sent = client.only(fake)
    assert sent.path == "/v1/images/generations"
    assert sent.headers["Authorization"] == "Bearer lab-key"
    assert sent.json == {
        "model": "flux-dev",
        "prompt": "a fox",
        "n": 2,
        "size": "512x512",
        "response_format": "b64_json",
    }


def test_entry_named_openai_compatible_serves_its_prefix(
    fake: FakeOpenAI, make_config: Any
) -> None:
    providers = {"openai-compatible": {"api_key": fake.api_key, "base_url": fake.url + "/v1"}}
    with live_gateway(make_config(providers=providers)) as gw:
        r = client.generate(
            gw.url, model="openai-compatible/sdxl", prompt="a fox", response_format="b64_json"
        )
    assert len(client.answered_images(r)) == 1
    assert fake.requests[0].model == "sdxl"


def test_edit_is_multipart(fake: FakeOpenAI, gw: LiveGateway) -> None:
    r = client.edit(
        gw.url,
        [png()],
        mask=png(1),
        model="mylab/flux-fill",
        prompt="a hat",
        response_format="b64_json",
    )
    assert fake.violations == []
    assert len(client.answered_images(r)) == 1
    sent = client.only(fake)
    assert sent.path == "/v1/images/edits"
    assert sent.field("model") == "flux-fill"
    assert [(f.field, f.data) for f in sent.files] == [("image", png()), ("mask", png(1))]


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (
            Reply(
                400,
                {
                    "error": {
                        "message": "Your request was rejected by the safety system.",
                        "type": "invalid_request_error",
                        "code": "content_policy_violation",
                        "param": None,
                    }
                },
            ),
            400,
            "content_policy_violation",
        ),
        (
            Reply(
                422,
                {
                    "error": {
                        "message": "Your request was rejected by the safety system.",
                        "type": "invalid_request_error",
                        "code": "moderation_blocked",
                        "param": None,
                    }
                },
            ),
            400,
            "content_policy_violation",
        ),
        (
            Reply(
                429,
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                        "param": None,
                    }
                },
                retry_after="1",
            ),
            429,
            "rate_limit_exceeded",
        ),
        (
            Reply(
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "param": None,
                    }
                },
            ),
            401,
            "provider_credential_invalid",
        ),
    ],
)
def test_errors_are_mapped(
    fake: FakeOpenAI, gw: LiveGateway, reply: Reply, status: int, code: str
) -> None:
    fake.script(reply)
    client.assert_error(
        client.generate(gw.url, model="mylab/flux-dev", prompt="a fox"), status, code
    )


def test_503_falls_back_to_the_next_model(fake: FakeOpenAI, gw: LiveGateway) -> None:
    fake.script(
        Reply(
            503,
            {
                "error": {
                    "message": "overloaded",
                    "type": "server_error",
                    "code": None,
                    "param": None,
                }
            },
        )
    )
    body = client.with_fallback(model="mylab/flux-dev", prompt="a fox", size="64x64")
    client.assert_fell_back(client.generate(gw.url, **body), fake)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: client.edit(url, [png()], model="mylab/dall-e-3", prompt="x"), "model"),
        (
            lambda url: client.generate(url, model="mylab/dall-e-3", prompt="x", size="512x512"),
            "size",
        ),
        (
            lambda url: client.edit(
                url, [png()], operation="variations", model="mylab/gpt-image-1"
            ),
            "model",
        ),
    ],
)
def test_known_model_limits_apply_on_compatible_servers(
    fake: FakeOpenAI, gw: LiveGateway, call: Any, param: str
) -> None:
    client.assert_unsent(call(gw.url), fake, param)


@pytest.mark.parametrize("size", ["1536x864", "3840x2160", "1008x3024", "auto"])
def test_gpt_image_2_takes_any_size_on_its_grid(
    fake: FakeOpenAI, gw: LiveGateway, size: str
) -> None:
    """gpt-image-2: both sides multiples of 16, ratio 1:3–3:1, at most 3840x2160 (the size
    docstring in openai-python's resources/images.py)."""
    r = client.generate(gw.url, model="mylab/gpt-image-2", prompt="a fox", size=size)
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert client.only(fake).values["size"] == size


@pytest.mark.parametrize("size", ["1000x1000", "4096x2304", "3072x1008", "2896x2896"])
def test_gpt_image_2_sizes_off_its_grid_are_never_sent(
    fake: FakeOpenAI, gw: LiveGateway, size: str
) -> None:
    client.assert_unsent(
        client.generate(gw.url, model="mylab/gpt-image-2", prompt="a fox", size=size), fake, "size"
    )
    older = client.generate(gw.url, model="mylab/gpt-image-1", prompt="a fox", size="1536x864")
    client.assert_unsent(older, fake, "size")
