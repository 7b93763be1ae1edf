"""Together AI adapter against a fake Together images API, driven through the gateway over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import client
from fakes.core import Reply
from fakes.together import FakeTogether
from imagekit import colour_of, decode_data_uri, png
from live import LiveGateway, live_gateway

SCHNELL = "black-forest-labs/FLUX.1-schnell"
KONTEXT = "black-forest-labs/FLUX.1-kontext-pro"


fake, gw = client.fixtures(FakeTogether)


def test_generation_sends_width_height_and_asks_base64(
    fake: FakeTogether, make_config: Any
) -> None:
    with live_gateway(make_config(providers=fake.providers(steps=4))) as gw:
        r = client.generate(
            gw.url,
            model=f"together/{SCHNELL}",
            prompt="a fox",
            n=2,
            size="768x512",
            seed=3,
            output_format="png",
            response_format="b64_json",
        )
    assert fake.violations == []
    assert [img.format for img in client.answered_images(r)] == ["PNG", "PNG"]
    sent = client.only(fake)
    assert sent.path == "/v1/images/generations"
    assert sent.json == {
        "model": SCHNELL,
        "prompt": "a fox",
        "n": 2,
        "response_format": "base64",
        "width": 768,
        "height": 512,
        "seed": 3,
        "output_format": "png",
        "steps": 4,
    }


def test_n_above_the_per_call_limit_runs_parallel_calls(
    fake: FakeTogether, make_config: Any
) -> None:
    with live_gateway(make_config(providers=fake.providers(max_n_per_call=2))) as gw:
        r = client.generate(gw.url, model=f"together/{SCHNELL}", prompt="a fox", n=5, seed=10)
    assert len(client.answered_images(r)) == 5
    sent = sorted(((s.json or {})["n"], (s.json or {})["seed"]) for s in fake.requests)
    assert sent == [(1, 12), (2, 10), (2, 11)]


def test_kontext_edit_sends_the_image_as_data_uri(fake: FakeTogether, gw: LiveGateway) -> None:
    r = client.edit(gw.url, [png(4)], model=f"together/{KONTEXT}", prompt="make it red")
    assert fake.violations == []
    assert len(client.answered_images(r)) == 1
    image_url = client.only(fake).values["image_url"]
    assert image_url.startswith("data:image/png;base64,")
    sent_img = decode_data_uri(image_url)
    assert sent_img is not None and sent_img.getpixel((0, 0)) == colour_of(4)


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (
            Reply(
                422,
                {
                    "error": {
                        "message": "NSFW content detected in the prompt",
                        "type": "invalid_request_error",
                    }
                },
            ),
            400,
            "content_policy_violation",
        ),
        (
            Reply(
                400,
                {
                    "error": {
                        "message": "Prompt flagged by the safety checker",
                        "type": "invalid_request_error",
                    }
                },
            ),
            400,
            "content_policy_violation",
        ),
        (
            Reply(429, {"error": {"message": "rate limit", "type": "rate_limit"}}, retry_after="1"),
            429,
            "rate_limit_exceeded",
        ),
        (
            Reply(401, {"error": {"message": "Invalid API key", "type": "invalid_api_key"}}),
            401,
            "provider_credential_invalid",
        ),
    ],
)
def test_errors_are_mapped(
    fake: FakeTogether, gw: LiveGateway, reply: Reply, status: int, code: str
) -> None:
    fake.script(reply)
    client.assert_error(
        client.generate(gw.url, model=f"together/{SCHNELL}", prompt="a fox"), status, code
    )


def test_503_falls_back_to_the_next_model(fake: FakeTogether, gw: LiveGateway) -> None:
    fake.script(Reply(503, {"error": {"message": "overloaded"}}))
    body = client.with_fallback(model=f"together/{SCHNELL}", prompt="a fox", size="64x64")
    client.assert_fell_back(client.generate(gw.url, **body), fake)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: client.edit(url, [png()], model=f"together/{SCHNELL}", prompt="x"), "model"),
        (
            lambda url: client.edit(
                url, [png()], operation="variations", model=f"together/{KONTEXT}"
            ),
            "model",
        ),
        (
            lambda url: client.generate(
                url, model=f"together/{SCHNELL}", prompt="x", output_format="webp"
            ),
            "output_format",
        ),
        (
            lambda url: client.edit(url, [png()] * 2, model=f"together/{KONTEXT}", prompt="x"),
            "image",
        ),
        (
            lambda url: client.edit(
                url, [png()], mask=png(), model=f"together/{KONTEXT}", prompt="x"
            ),
            "mask",
        ),
    ],
)
def test_what_together_cannot_do_is_never_sent(
    fake: FakeTogether, gw: LiveGateway, call: Any, param: str
) -> None:
    client.assert_unsent(call(gw.url), fake, param)
