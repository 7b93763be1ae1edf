"""Together AI adapter against a fake Together images API, driven through the gateway over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.scripted import Reply, answered_images, edit, error_of, generate, image_bytes
from fakes.scripted import decode_image as _decode
from fakes.together import FakeTogether
from live import live_gateway

SCHNELL = "black-forest-labs/FLUX.1-schnell"
KONTEXT = "black-forest-labs/FLUX.1-kontext-pro"


@pytest.fixture
def fake() -> Any:
    with FakeTogether() as server:
        yield server


def test_generation_sends_width_height_and_asks_base64(
    fake: FakeTogether, make_config: Any
) -> None:
    with live_gateway(make_config(providers=fake.providers(steps=4))) as gw:
        r = generate(gw.url, model=f"together/{SCHNELL}", prompt="a fox", n=2, size="768x512",
                     seed=3, output_format="png", response_format="b64_json")  # fmt: skip
    assert fake.violations == []
    assert [img.format for img in answered_images(r)] == ["PNG", "PNG"]
    (sent,) = fake.requests
    assert sent.path == "/v1/images/generations"
    assert sent.json == {
        "model": SCHNELL, "prompt": "a fox", "n": 2, "response_format": "base64",
        "width": 768, "height": 512, "seed": 3, "output_format": "png", "steps": 4,
    }  # fmt: skip


def test_n_above_the_per_call_limit_runs_parallel_calls(
    fake: FakeTogether, make_config: Any
) -> None:
    with live_gateway(make_config(providers=fake.providers(max_n_per_call=2))) as gw:
        r = generate(gw.url, model=f"together/{SCHNELL}", prompt="a fox", n=5, seed=10)
    assert len(answered_images(r)) == 5
    sent = sorted(((s.json or {})["n"], (s.json or {})["seed"]) for s in fake.requests)
    assert sent == [(1, 12), (2, 10), (2, 11)]


def test_kontext_edit_sends_the_image_as_data_uri(fake: FakeTogether, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = edit(gw.url, [image_bytes(index=4)], model=f"together/{KONTEXT}", prompt="make it red")
    assert fake.violations == []
    assert len(answered_images(r)) == 1
    (sent,) = fake.requests
    assert sent.json is not None
    assert sent.json["image_url"].startswith("data:image/png;base64,")
    problems: list[str] = []
    sent_img = _decode(sent.json["image_url"].split(",", 1)[1], "image_url", problems)
    assert sent_img is not None and sent_img.getpixel((0, 0)) == (200, 90, 160)


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (Reply(422, {"error": {"message": "NSFW content detected in the prompt",
                               "type": "invalid_request_error"}}), 400,
         "content_policy_violation"),
        (Reply(400, {"error": {"message": "Prompt flagged by the safety checker",
                               "type": "invalid_request_error"}}), 400,
         "content_policy_violation"),
        (Reply(429, {"error": {"message": "rate limit", "type": "rate_limit"}},
               retry_after="1"), 429, "rate_limit_exceeded"),
        (Reply(401, {"error": {"message": "Invalid API key", "type": "invalid_api_key"}}), 401,
         "provider_credential_invalid"),
    ],
)  # fmt: skip
def test_errors_are_mapped(
    fake: FakeTogether, make_config: Any, reply: Reply, status: int, code: str
) -> None:
    fake.script(reply)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model=f"together/{SCHNELL}", prompt="a fox")
    assert r.status_code == status, r.text
    assert error_of(r)["code"] == code


def test_503_falls_back_to_the_next_model(fake: FakeTogether, make_config: Any) -> None:
    fake.script(Reply(503, {"error": {"message": "overloaded"}}))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model=f"together/{SCHNELL}", prompt="a fox", size="64x64",
                     orq={"fallbacks": [{"model": "placeholder/x"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: edit(url, [image_bytes()], model=f"together/{SCHNELL}", prompt="x"), "model"),
        (lambda url: edit(url, [image_bytes()], operation="variations",
                          model=f"together/{KONTEXT}"), "model"),
        (lambda url: generate(url, model=f"together/{SCHNELL}", prompt="x",
                              output_format="webp"), "output_format"),
        (lambda url: edit(url, [image_bytes()] * 2, model=f"together/{KONTEXT}", prompt="x"),
         "image"),
        (lambda url: edit(url, [image_bytes()], mask=image_bytes(), model=f"together/{KONTEXT}",
                          prompt="x"), "mask"),
    ],
)  # fmt: skip
def test_what_together_cannot_do_is_never_sent(
    fake: FakeTogether, make_config: Any, call: Any, param: str
) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = call(gw.url)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "unsupported_engine"
    assert error_of(r)["param"] == param
    assert fake.requests == []
