"""Recraft adapter against a fake Recraft API, driven through the gateway over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import client
from fakes.core import Reply
from fakes.recraft import FakeRecraft
from imagekit import alpha_mask, image_of, png
from live import LiveGateway, live_gateway

fake, gw = client.fixtures(FakeRecraft)


def test_generation_maps_size_style_and_batches_n(fake: FakeRecraft, make_config: Any) -> None:
    config = make_config(providers=fake.providers(style="digital_illustration"))
    with live_gateway(config) as gw:
        r = client.generate(
            gw.url,
            model="recraft/recraftv3",
            prompt="a fox",
            n=8,
            size="1792x1024",
            response_format="b64_json",
        )
    assert fake.violations == []
    images = client.answered_images(r)
    assert [img.format for img in images] == ["WEBP"] * 8
    bodies = sorted((s.json or {} for s in fake.requests), key=lambda b: -b["n"])
    assert bodies == [
        {
            "n": n,
            "response_format": "b64_json",
            "model": "recraftv3",
            "prompt": "a fox",
            "style": "digital_illustration",
            "size": "1820x1024",
        }
        for n in (6, 2)
    ]


def test_openai_styles_are_not_sent(fake: FakeRecraft, gw: LiveGateway) -> None:
    r = client.generate(gw.url, model="recraft/recraftv3", prompt="a fox", style="vivid")
    assert r.status_code == 200, r.text
    assert "style" not in client.only(fake).values


def test_edit_without_mask_is_image_to_image(fake: FakeRecraft, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers(strength=0.3))) as gw:
        r = client.edit(gw.url, [png(2)], model="recraft/recraftv3", prompt="winter")
    assert fake.violations == []
    assert len(client.answered_images(r)) == 1
    sent = client.only(fake)
    assert sent.path == "/v1/images/imageToImage"
    assert {k: v[0] for k, v in sent.fields.items()} == {
        "n": "1",
        "response_format": "b64_json",
        "model": "recraftv3",
        "prompt": "winter",
        "strength": "0.3",
    }
    assert [(f.field, f.data) for f in sent.files] == [("image", png(2))]


def test_edit_with_mask_is_inpaint_with_a_grayscale_mask(
    fake: FakeRecraft, gw: LiveGateway
) -> None:
    mask = alpha_mask(16, clear=(8, 0, 16, 16))  # right half transparent: inpaint there
    r = client.edit(gw.url, [png()], mask=mask, model="recraft/recraftv3", prompt="a moon")
    assert fake.violations == []
    assert r.status_code == 200, r.text
    sent = client.only(fake)
    assert sent.path == "/v1/images/inpaint"
    mask_part = sent.file("mask")
    sent_mask = image_of(mask_part.data) if mask_part else None
    assert sent_mask is not None
    assert (sent_mask.getpixel((2, 2)), sent_mask.getpixel((12, 2))) == (0, 255)


def test_variation_is_variate_image(fake: FakeRecraft, gw: LiveGateway) -> None:
    r = client.edit(
        gw.url, [png()], operation="variations", model="recraft/recraftv3", n=2, size="1024x1024"
    )
    assert fake.violations == []
    assert len(client.answered_images(r)) == 2
    sent = client.only(fake)
    assert sent.path == "/v1/images/variateImage"
    assert {k: v[0] for k, v in sent.fields.items()} == {
        "n": "2",
        "response_format": "b64_json",
        "size": "1024x1024",
    }


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (
            Reply(400, {"code": "nsfw_prompt", "message": "NSFW content detected in the prompt"}),
            400,
            "content_policy_violation",
        ),
        (
            Reply(422, {"code": "nsfw_prompt", "message": "NSFW content detected in the prompt"}),
            400,
            "content_policy_violation",
        ),
        (
            Reply(429, {"code": "rate_limited", "message": "too many requests"}, retry_after="1"),
            429,
            "rate_limit_exceeded",
        ),
        (
            Reply(401, {"code": "unauthorized", "message": "invalid token"}),
            401,
            "provider_credential_invalid",
        ),
    ],
)
def test_errors_are_mapped(
    fake: FakeRecraft, gw: LiveGateway, reply: Reply, status: int, code: str
) -> None:
    fake.script(reply)
    error = client.assert_error(
        client.generate(gw.url, model="recraft/recraftv3", prompt="a fox"), status, code
    )
    assert reply.body["message"] in error["message"]


def test_503_falls_back_to_the_next_model(fake: FakeRecraft, gw: LiveGateway) -> None:
    fake.script(Reply(503, {"code": "unavailable", "message": "busy"}))
    body = client.with_fallback(model="recraft/recraftv3", prompt="a fox", size="1024x1024")
    client.assert_fell_back(client.generate(gw.url, **body), fake)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: client.generate(url, model="recraft/recraftv3_vector", prompt="x"), "model"),
        (
            lambda url: client.generate(
                url, model="recraft/recraftv3", prompt="x", size="4096x256"
            ),
            "size",
        ),
        (
            lambda url: client.generate(
                url, model="recraft/recraftv3", prompt="x", output_format="png"
            ),
            "output_format",
        ),
        (lambda url: client.edit(url, [png()] * 2, model="recraft/recraftv3", prompt="x"), "image"),
    ],
)
def test_what_recraft_cannot_do_is_never_sent(
    fake: FakeRecraft, gw: LiveGateway, call: Any, param: str
) -> None:
    client.assert_unsent(call(gw.url), fake, param)
