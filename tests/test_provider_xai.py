"""xAI adapter against a fake xAI images API, driven through the gateway over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import client
from fakes.core import Reply
from fakes.xai import FakeXAI
from imagekit import data_uri_bytes, png
from live import LiveGateway

IMAGINE = "grok-imagine-image"


fake, gw = client.fixtures(FakeXAI)


def test_generation_sends_aspect_ratio_never_size(fake: FakeXAI, gw: LiveGateway) -> None:
    r = client.generate(
        gw.url,
        model=f"xai/{IMAGINE}",
        prompt="a fox",
        n=3,
        size="1536x1024",
        response_format="b64_json",
    )
    assert fake.violations == []
    assert [img.format for img in client.answered_images(r)] == ["JPEG"] * 3
    assert [item["revised_prompt"] for item in r.json()["data"]] == ["revised"] * 3
    sent = client.only(fake)
    assert sent.path == "/v1/images/generations"
    assert sent.json == {
        "model": IMAGINE,
        "prompt": "a fox",
        "n": 3,
        "response_format": "b64_json",
        "aspect_ratio": "3:2",
    }


def test_large_sizes_ask_for_2k(fake: FakeXAI, gw: LiveGateway) -> None:
    r = client.generate(gw.url, model=f"xai/{IMAGINE}", prompt="a fox", size="2048x1152")
    assert r.status_code == 200, r.text
    sent = client.only(fake).values
    assert (sent["aspect_ratio"], sent["resolution"]) == ("16:9", "2k")


def test_edit_sends_images_as_data_uris(fake: FakeXAI, gw: LiveGateway) -> None:
    inputs = [png(1), png(2)]
    one = client.edit(gw.url, inputs[:1], model=f"xai/{IMAGINE}", prompt="snow")
    two = client.edit(gw.url, inputs, model=f"xai/{IMAGINE}", prompt="merge")
    assert fake.violations == []
    assert len(client.answered_images(one)) == len(client.answered_images(two)) == 1
    first, second = (s.json or {} for s in fake.requests)
    assert [s.path for s in fake.requests] == ["/v1/images/edits"] * 2
    assert first["image"]["type"] == "image_url" and "images" not in first
    sent = [data_uri_bytes(ref["url"]) for ref in second["images"]]
    assert sent == inputs


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (
            Reply(
                400,
                {
                    "code": "Client specified an invalid argument",
                    "error": "Generated image rejected by content moderation.",
                },
            ),
            400,
            "content_policy_violation",
        ),
        (
            Reply(
                422,
                {
                    "code": "Client specified an invalid argument",
                    "error": "Generated image rejected by content moderation.",
                },
            ),
            400,
            "content_policy_violation",
        ),
        (
            Reply(
                429, {"code": "Too many requests", "error": "Rate limit reached"}, retry_after="1"
            ),
            429,
            "rate_limit_exceeded",
        ),
        (
            Reply(
                400,
                {
                    "code": "Client specified an invalid argument",
                    "error": "Incorrect API key provided: xa***",
                },
            ),
            401,
            "provider_credential_invalid",
        ),
    ],
)
def test_errors_are_mapped(
    fake: FakeXAI, gw: LiveGateway, reply: Reply, status: int, code: str
) -> None:
    fake.script(reply)
    error = client.assert_error(
        client.generate(gw.url, model=f"xai/{IMAGINE}", prompt="a fox"), status, code
    )
    assert reply.body["error"] in error["message"]


def test_503_falls_back_to_the_next_model(fake: FakeXAI, gw: LiveGateway) -> None:
    fake.script(Reply(503, {"code": "Service Unavailable", "error": "overloaded"}))
    body = client.with_fallback(model=f"xai/{IMAGINE}", prompt="a fox", size="64x64")
    client.assert_fell_back(client.generate(gw.url, **body), fake)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: client.edit(url, [png()], model="xai/grok-2-image-1212", prompt="x"), "model"),
        (
            lambda url: client.generate(
                url, model="xai/grok-2-image-1212", prompt="x", size="1024x1024"
            ),
            "size",
        ),
        (
            lambda url: client.generate(
                url, model=f"xai/{IMAGINE}", prompt="x", output_format="png"
            ),
            "output_format",
        ),
        (
            lambda url: client.generate(url, model=f"xai/{IMAGINE}", prompt="x", size="4096x256"),
            "size",
        ),
        (lambda url: client.edit(url, [png()] * 4, model=f"xai/{IMAGINE}", prompt="x"), "image"),
        (
            lambda url: client.edit(url, [png()], mask=png(), model=f"xai/{IMAGINE}", prompt="x"),
            "mask",
        ),
    ],
)
def test_what_xai_cannot_do_is_never_sent(
    fake: FakeXAI, gw: LiveGateway, call: Any, param: str
) -> None:
    client.assert_unsent(call(gw.url), fake, param)
