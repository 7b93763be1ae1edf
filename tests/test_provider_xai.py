"""xAI adapter against a fake xAI images API, driven through the gateway over HTTP."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fakes.scripted import Reply, answered_images, edit, error_of, generate, image_bytes
from fakes.xai import FakeXAI
from live import live_gateway

IMAGINE = "grok-imagine-image"


@pytest.fixture
def fake() -> Any:
    with FakeXAI() as server:
        yield server


def test_generation_sends_aspect_ratio_never_size(fake: FakeXAI, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model=f"xai/{IMAGINE}", prompt="a fox", n=3, size="1536x1024",
                     response_format="b64_json")  # fmt: skip
    assert fake.violations == []
    assert [img.format for img in answered_images(r)] == ["JPEG"] * 3
    assert [item["revised_prompt"] for item in r.json()["data"]] == ["revised"] * 3
    (sent,) = fake.requests
    assert sent.path == "/v1/images/generations"
    assert sent.json == {"model": IMAGINE, "prompt": "a fox", "n": 3,
                         "response_format": "b64_json", "aspect_ratio": "3:2"}  # fmt: skip


def test_large_sizes_ask_for_2k(fake: FakeXAI, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model=f"xai/{IMAGINE}", prompt="a fox", size="2048x1152")
    assert r.status_code == 200, r.text
    assert fake.requests[0].json is not None
    assert (fake.requests[0].json["aspect_ratio"], fake.requests[0].json["resolution"]) == (
        "16:9", "2k"
    )  # fmt: skip


def test_edit_sends_images_as_data_uris(fake: FakeXAI, make_config: Any) -> None:
    inputs = [image_bytes(index=1), image_bytes(index=2)]
    with live_gateway(make_config(providers=fake.providers())) as gw:
        one = edit(gw.url, inputs[:1], model=f"xai/{IMAGINE}", prompt="snow")
        two = edit(gw.url, inputs, model=f"xai/{IMAGINE}", prompt="merge")
    assert fake.violations == []
    assert len(answered_images(one)) == len(answered_images(two)) == 1
    first, second = (s.json or {} for s in fake.requests)
    assert [s.path for s in fake.requests] == ["/v1/images/edits"] * 2
    assert first["image"]["type"] == "image_url" and "images" not in first
    sent = [base64.b64decode(ref["url"].split(",", 1)[1]) for ref in second["images"]]
    assert sent == inputs


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (Reply(400, {"code": "Client specified an invalid argument",
                     "error": "Generated image rejected by content moderation."}), 400,
         "content_policy_violation"),
        (Reply(422, {"code": "Client specified an invalid argument",
                     "error": "Generated image rejected by content moderation."}), 400,
         "content_policy_violation"),
        (Reply(429, {"code": "Too many requests", "error": "Rate limit reached"},
               retry_after="1"), 429, "rate_limit_exceeded"),
        (Reply(400, {"code": "Client specified an invalid argument",
                     "error": "Incorrect API key provided: xa***"}), 401,
         "provider_credential_invalid"),
    ],
)  # fmt: skip
def test_errors_are_mapped(
    fake: FakeXAI, make_config: Any, reply: Reply, status: int, code: str
) -> None:
    fake.script(reply)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model=f"xai/{IMAGINE}", prompt="a fox")
    assert r.status_code == status, r.text
    assert error_of(r)["code"] == code
    assert reply.body["error"] in error_of(r)["message"]


def test_503_falls_back_to_the_next_model(fake: FakeXAI, make_config: Any) -> None:
    fake.script(Reply(503, {"code": "Service Unavailable", "error": "overloaded"}))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model=f"xai/{IMAGINE}", prompt="a fox", size="64x64",
                     orq={"fallbacks": [{"model": "placeholder/x"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: edit(url, [image_bytes()], model="xai/grok-2-image-1212", prompt="x"),
         "model"),
        (lambda url: generate(url, model="xai/grok-2-image-1212", prompt="x",
                              size="1024x1024"), "size"),
        (lambda url: generate(url, model=f"xai/{IMAGINE}", prompt="x", output_format="png"),
         "output_format"),
        (lambda url: generate(url, model=f"xai/{IMAGINE}", prompt="x", size="4096x256"), "size"),
        (lambda url: edit(url, [image_bytes()] * 4, model=f"xai/{IMAGINE}", prompt="x"), "image"),
        (lambda url: edit(url, [image_bytes()], mask=image_bytes(), model=f"xai/{IMAGINE}",
                          prompt="x"), "mask"),
    ],
)  # fmt: skip
def test_what_xai_cannot_do_is_never_sent(
    fake: FakeXAI, make_config: Any, call: Any, param: str
) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = call(gw.url)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "unsupported_engine"
    assert error_of(r)["param"] == param
    assert fake.requests == []
