"""The generic ``openai-compatible`` adapter: any server speaking OpenAI's images API, reached
through a named config entry (``mylab: {type: openai-compatible, base_url}``) or an entry
named ``openai-compatible``; driven through the gateway over HTTP against a fake OpenAI."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.openai import FakeOpenAI, Reply
from fakes.scripted import answered_images, edit, error_of, generate, image_bytes
from live import live_gateway


@pytest.fixture
def fake() -> Any:
    with FakeOpenAI(api_key="lab-key") as server:
        yield server


def lab(fake: FakeOpenAI, name: str = "mylab") -> dict[str, Any]:
    entry = {"type": "openai-compatible", "api_key": fake.api_key, "base_url": fake.url + "/v1"}
    return {name: entry}


def test_named_entry_generation(fake: FakeOpenAI, make_config: Any) -> None:
    with live_gateway(make_config(providers=lab(fake))) as gw:
        r = generate(gw.url, model="mylab/flux-dev", prompt="a fox", n=2, size="512x512",
                     response_format="b64_json")  # fmt: skip
    assert fake.violations == []
    assert len(answered_images(r)) == 2
    assert r.headers["x-orq-model"] == "mylab/flux-dev"
    (sent,) = fake.requests
    assert sent.path == "/v1/images/generations"
    assert sent.headers["Authorization"] == "Bearer lab-key"
    assert sent.json == {"model": "flux-dev", "prompt": "a fox", "n": 2, "size": "512x512",
                         "response_format": "b64_json"}  # fmt: skip


def test_entry_named_openai_compatible_serves_its_prefix(
    fake: FakeOpenAI, make_config: Any
) -> None:
    providers = {"openai-compatible": {"api_key": fake.api_key, "base_url": fake.url + "/v1"}}
    with live_gateway(make_config(providers=providers)) as gw:
        r = generate(gw.url, model="openai-compatible/sdxl", prompt="a fox",
                     response_format="b64_json")  # fmt: skip
    assert len(answered_images(r)) == 1
    assert fake.requests[0].model == "sdxl"


def test_edit_is_multipart(fake: FakeOpenAI, make_config: Any) -> None:
    with live_gateway(make_config(providers=lab(fake))) as gw:
        r = edit(gw.url, [image_bytes()], mask=image_bytes(index=1), model="mylab/flux-fill",
                 prompt="a hat", response_format="b64_json")  # fmt: skip
    assert fake.violations == []
    assert len(answered_images(r)) == 1
    (sent,) = fake.requests
    assert sent.path == "/v1/images/edits"
    assert sent.field("model") == "flux-fill"
    assert [(f.field, f.data) for f in sent.files] == [
        ("image", image_bytes()), ("mask", image_bytes(index=1))
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (Reply(400, {"error": {"message": "Your request was rejected by the safety system.",
                               "type": "invalid_request_error", "code": "content_policy_violation",
                               "param": None}}), 400, "content_policy_violation"),
        (Reply(422, {"error": {"message": "Your request was rejected by the safety system.",
                               "type": "invalid_request_error", "code": "moderation_blocked",
                               "param": None}}), 400, "content_policy_violation"),
        (Reply(429, {"error": {"message": "Rate limit reached", "type": "requests",
                               "code": "rate_limit_exceeded", "param": None}}, retry_after="1"),
         429, "rate_limit_exceeded"),
        (Reply(401, {"error": {"message": "Incorrect API key provided",
                               "type": "invalid_request_error", "code": "invalid_api_key",
                               "param": None}}), 401,
         "provider_credential_invalid"),
    ],
)  # fmt: skip
def test_errors_are_mapped(
    fake: FakeOpenAI, make_config: Any, reply: Reply, status: int, code: str
) -> None:
    fake.script(reply)
    with live_gateway(make_config(providers=lab(fake))) as gw:
        r = generate(gw.url, model="mylab/flux-dev", prompt="a fox")
    assert r.status_code == status, r.text
    assert error_of(r)["code"] == code


def test_503_falls_back_to_the_next_model(fake: FakeOpenAI, make_config: Any) -> None:
    fake.script(Reply(503, {"error": {"message": "overloaded", "type": "server_error",
                                      "code": None, "param": None}}))  # fmt: skip
    with live_gateway(make_config(providers=lab(fake))) as gw:
        r = generate(gw.url, model="mylab/flux-dev", prompt="a fox", size="64x64",
                     orq={"fallbacks": [{"model": "placeholder/x"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda url: edit(url, [image_bytes()], model="mylab/dall-e-3", prompt="x"), "model"),
        (lambda url: generate(url, model="mylab/dall-e-3", prompt="x", size="512x512"), "size"),
        (lambda url: edit(url, [image_bytes()], operation="variations",
                          model="mylab/gpt-image-1"), "model"),
    ],
)  # fmt: skip
def test_known_model_limits_apply_on_compatible_servers(
    fake: FakeOpenAI, make_config: Any, call: Any, param: str
) -> None:
    with live_gateway(make_config(providers=lab(fake))) as gw:
        r = call(gw.url)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "unsupported_engine"
    assert error_of(r)["param"] == param
    assert fake.requests == []


@pytest.mark.parametrize("size", ["1536x864", "3840x2160", "1008x3024", "auto"])
def test_gpt_image_2_takes_any_size_on_its_grid(
    fake: FakeOpenAI, make_config: Any, size: str
) -> None:
    """gpt-image-2: both sides multiples of 16, ratio 1:3–3:1, at most 3840x2160 (the size
    docstring in openai-python's resources/images.py)."""
    with live_gateway(make_config(providers=lab(fake))) as gw:
        r = generate(gw.url, model="mylab/gpt-image-2", prompt="a fox", size=size)
    assert r.status_code == 200, r.text
    assert fake.violations == []
    (sent,) = fake.requests
    assert sent.json is not None and sent.json["size"] == size


@pytest.mark.parametrize("size", ["1000x1000", "4096x2304", "3072x1008", "2896x2896"])
def test_gpt_image_2_sizes_off_its_grid_are_never_sent(
    fake: FakeOpenAI, make_config: Any, size: str
) -> None:
    with live_gateway(make_config(providers=lab(fake))) as gw:
        r = generate(gw.url, model="mylab/gpt-image-2", prompt="a fox", size=size)
        older = generate(gw.url, model="mylab/gpt-image-1", prompt="a fox", size="1536x864")
    for refused in (r, older):
        assert refused.status_code == 400, refused.text
        assert (error_of(refused)["code"], error_of(refused)["param"]) == (
            "unsupported_engine", "size"
        )  # fmt: skip
    assert fake.requests == []
