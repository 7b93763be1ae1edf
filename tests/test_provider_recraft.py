"""Recraft adapter against a fake Recraft API, driven through the gateway over HTTP."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fakes.recraft import FakeRecraft
from fakes.scripted import Reply, answered_images, edit, error_of, generate, image_bytes
from live import live_gateway
from PIL import Image


@pytest.fixture
def fake() -> Any:
    with FakeRecraft() as server:
        yield server


def test_generation_maps_size_style_and_batches_n(fake: FakeRecraft, make_config: Any) -> None:
    config = make_config(providers=fake.providers(style="digital_illustration"))
    with live_gateway(config) as gw:
        r = generate(gw.url, model="recraft/recraftv3", prompt="a fox", n=8, size="1792x1024",
                     response_format="b64_json")  # fmt: skip
    assert fake.violations == []
    images = answered_images(r)
    assert [img.format for img in images] == ["WEBP"] * 8
    bodies = sorted((s.json or {} for s in fake.requests), key=lambda b: -b["n"])
    assert bodies == [
        {"n": n, "response_format": "b64_json", "model": "recraftv3", "prompt": "a fox",
         "style": "digital_illustration", "size": "1820x1024"}
        for n in (6, 2)
    ]  # fmt: skip


def test_openai_styles_are_not_sent(fake: FakeRecraft, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model="recraft/recraftv3", prompt="a fox", style="vivid")
    assert r.status_code == 200, r.text
    assert "style" not in (fake.requests[0].json or {})


def test_edit_without_mask_is_image_to_image(fake: FakeRecraft, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers(strength=0.3))) as gw:
        r = edit(gw.url, [image_bytes(index=2)], model="recraft/recraftv3", prompt="winter")
    assert fake.violations == []
    assert len(answered_images(r)) == 1
    (sent,) = fake.requests
    assert sent.path == "/v1/images/imageToImage"
    assert {k: v[0] for k, v in sent.fields.items()} == {
        "n": "1", "response_format": "b64_json", "model": "recraftv3", "prompt": "winter",
        "strength": "0.3",
    }  # fmt: skip
    assert [(f.field, f.data) for f in sent.files] == [("image", image_bytes(index=2))]


def test_edit_with_mask_is_inpaint_with_a_grayscale_mask(
    fake: FakeRecraft, make_config: Any
) -> None:
    alpha = Image.new("RGBA", (16, 16), (255, 255, 255, 255))
    alpha.paste((0, 0, 0, 0), (8, 0, 16, 16))  # right half transparent: inpaint there
    buf = io.BytesIO()
    alpha.save(buf, "PNG")
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = edit(gw.url, [image_bytes()], mask=buf.getvalue(), model="recraft/recraftv3",
                 prompt="a moon")  # fmt: skip
    assert fake.violations == []
    assert r.status_code == 200, r.text
    (sent,) = fake.requests
    assert sent.path == "/v1/images/inpaint"
    (mask_part,) = [f for f in sent.files if f.field == "mask"]
    mask = Image.open(io.BytesIO(mask_part.data))
    assert (mask.getpixel((2, 2)), mask.getpixel((12, 2))) == (0, 255)


def test_variation_is_variate_image(fake: FakeRecraft, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = edit(gw.url, [image_bytes()], operation="variations", model="recraft/recraftv3",
                 n=2, size="1024x1024")  # fmt: skip
    assert fake.violations == []
    assert len(answered_images(r)) == 2
    (sent,) = fake.requests
    assert sent.path == "/v1/images/variateImage"
    assert {k: v[0] for k, v in sent.fields.items()} == {
        "n": "2", "response_format": "b64_json", "size": "1024x1024"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (Reply(400, {"code": "nsfw_prompt", "message": "NSFW content detected in the prompt"}),
         400, "content_policy_violation"),
        (Reply(422, {"code": "nsfw_prompt", "message": "NSFW content detected in the prompt"}),
         400, "content_policy_violation"),
        (Reply(429, {"code": "rate_limited", "message": "too many requests"}, retry_after="1"),
         429, "rate_limit_exceeded"),
        (Reply(401, {"code": "unauthorized", "message": "invalid token"}), 401,
         "provider_credential_invalid"),
    ],
)  # fmt: skip
def test_errors_are_mapped(
    fake: FakeRecraft, make_config: Any, reply: Reply, status: int, code: str
) -> None:
    fake.script(reply)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model="recraft/recraftv3", prompt="a fox")
    assert r.status_code == status, r.text
    assert error_of(r)["code"] == code
    assert reply.body["message"] in error_of(r)["message"]


def test_503_falls_back_to_the_next_model(fake: FakeRecraft, make_config: Any) -> None:
    fake.script(Reply(503, {"code": "unavailable", "message": "busy"}))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model="recraft/recraftv3", prompt="a fox", size="1024x1024",
                     orq={"fallbacks": [{"model": "placeholder/x"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: generate(url, model="recraft/recraftv3_vector", prompt="x"), "model"),
        (lambda url: generate(url, model="recraft/recraftv3", prompt="x", size="4096x256"),
         "size"),
        (lambda url: generate(url, model="recraft/recraftv3", prompt="x", output_format="png"),
         "output_format"),
        (lambda url: edit(url, [image_bytes()] * 2, model="recraft/recraftv3", prompt="x"),
         "image"),
    ],
)  # fmt: skip
def test_what_recraft_cannot_do_is_never_sent(
    fake: FakeRecraft, make_config: Any, call: Any, param: str
) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = call(gw.url)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "unsupported_engine"
    assert error_of(r)["param"] == param
    assert fake.requests == []
