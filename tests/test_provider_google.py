"""Gemini API adapter (generateContent image output and Imagen predict) against a fake Gemini
API, driven through the gateway over HTTP."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fakes.client import answered_images, edit, error_of, generate
from fakes.core import Reply
from fakes.google import FakeGoogle
from imagekit import png
from live import live_gateway

GEMINI = "gemini-2.5-flash-image"


@pytest.fixture
def fake() -> Any:
    with FakeGoogle() as server:
        yield server


def test_gemini_generation_fans_out_n_and_translates_size(
    fake: FakeGoogle, make_config: Any
) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(
            gw.url,
            model=f"google/{GEMINI}",
            prompt="a fox",
            n=2,
            size="1536x1024",
            seed=7,
            response_format="b64_json",
        )
    assert fake.violations == []
    assert [img.format for img in answered_images(r)] == ["PNG", "PNG"]
    assert {s.path for s in fake.requests} == {f"/v1beta/models/{GEMINI}:generateContent"}
    configs = sorted((s.json or {})["generationConfig"]["seed"] for s in fake.requests)
    assert configs == [7, 8]  # one call per image, seeds kept distinct
    for sent in fake.requests:
        assert sent.json == {
            "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
            "generationConfig": {
                "responseModalities": ["IMAGE"],
                "imageConfig": {"aspectRatio": "3:2"},
                "seed": sent.json["generationConfig"]["seed"],
            },
        }
    assert r.json()["usage"] == {
        "input_tokens": 14,
        "output_tokens": 2580,
        "total_tokens": 2594,
        "input_tokens_details": {"text_tokens": 14, "image_tokens": 0},
    }


def test_gemini_edit_sends_images_inline(fake: FakeGoogle, make_config: Any) -> None:
    inputs = [png(1), png(2, fmt="JPEG")]
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = edit(gw.url, inputs, model=f"google/{GEMINI}", prompt="merge them")
    assert fake.violations == []
    assert len(answered_images(r)) == 1
    (sent,) = fake.requests
    parts = (sent.json or {})["contents"][0]["parts"]
    assert parts[0] == {"text": "merge them"}
    assert [base64.b64decode(p["inlineData"]["data"]) for p in parts[1:]] == inputs
    assert [p["inlineData"]["mimeType"] for p in parts[1:]] == ["image/png", "image/jpeg"]


def test_imagen_on_the_gemini_api_batches_sample_count(fake: FakeGoogle, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(
            gw.url,
            model="google/imagen-4.0-generate-001",
            prompt="a fox",
            n=6,
            size="1792x1024",
            response_format="b64_json",
        )
    assert fake.violations == []
    assert len(answered_images(r)) == 6
    params = sorted(
        ((s.json or {})["parameters"] for s in fake.requests), key=lambda p: -p["sampleCount"]
    )
    # 1792 px wide is more than Imagen's 1K renders (1408x768 at 16:9): ask for 2K, in the
    # field predict reads on both APIs (``imageSize`` is generateContent's name)
    assert params == [
        {
            "sampleCount": 4,
            "aspectRatio": "16:9",
            "sampleImageSize": "2K",
            "includeRaiReason": True,
        },
        {
            "sampleCount": 2,
            "aspectRatio": "16:9",
            "sampleImageSize": "2K",
            "includeRaiReason": True,
        },
    ]
    assert {s.path for s in fake.requests} == {"/v1beta/models/imagen-4.0-generate-001:predict"}


def test_imagen_on_the_gemini_api_honours_jpeg_output(fake: FakeGoogle, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(
            gw.url,
            model="google/imagen-4.0-generate-001",
            prompt="a fox",
            n=2,
            output_format="jpeg",
            output_compression=70,
            seed=3,
            response_format="b64_json",
        )
    assert fake.violations == []
    assert [img.format for img in answered_images(r)] == ["JPEG", "JPEG"]
    (sent,) = fake.requests
    params = (sent.json or {})["parameters"]
    assert params["outputOptions"] == {"mimeType": "image/jpeg", "compressionQuality": 70}
    assert "seed" not in params  # the Gemini API refuses a seed (the fake would flag it)


BAD_KEY = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
    }
}
EXHAUSTED = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
    }
}
BLOCKED_PROMPT = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}
BLOCKED_IMAGE = {"candidates": [{"content": {"parts": []}, "finishReason": "IMAGE_SAFETY"}]}


def finished(reason: str) -> dict[str, Any]:
    """A candidate that stopped with ``reason`` and no image."""
    return {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": reason}]}


TEXT_ONLY = {
    "candidates": [
        {"content": {"parts": [{"text": "I cannot draw that."}]}, "finishReason": "STOP"}
    ]
}


@pytest.mark.parametrize(
    ("reply", "status", "code", "says"),
    [
        (Reply(400, BAD_KEY), 401, "provider_credential_invalid", "API key not valid"),
        (Reply(429, EXHAUSTED), 429, "rate_limit_exceeded", "Resource has been exhausted"),
        (Reply(200, BLOCKED_PROMPT), 400, "content_policy_violation", "PROHIBITED_CONTENT"),
        (Reply(200, BLOCKED_IMAGE), 400, "content_policy_violation", "IMAGE_SAFETY"),
        (Reply(200, TEXT_ONLY), 502, "provider_error", "I cannot draw that."),
        # the SDK's FinishReason enum: filters are a policy refusal...
        (
            Reply(200, finished("IMAGE_PROHIBITED_CONTENT")),
            400,
            "content_policy_violation",
            "IMAGE_PROHIBITED_CONTENT",
        ),
        (
            Reply(200, finished("IMAGE_RECITATION")),
            400,
            "content_policy_violation",
            "IMAGE_RECITATION",
        ),
        # ...an unspecified stop is not: "stopped for a reason not otherwise specified"
        (Reply(200, finished("IMAGE_OTHER")), 502, "provider_error", "IMAGE_OTHER"),
        (Reply(200, finished("NO_IMAGE")), 502, "provider_error", "NO_IMAGE"),
        (Reply(200, finished("OTHER")), 502, "provider_error", "OTHER"),
    ],
)
def test_errors_are_mapped(
    fake: FakeGoogle, make_config: Any, reply: Reply, status: int, code: str, says: str
) -> None:
    fake.script(reply)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model=f"google/{GEMINI}", prompt="a fox")
    assert r.status_code == status, r.text
    assert error_of(r)["code"] == code
    assert says in error_of(r)["message"]


def test_imagen_answer_with_every_image_filtered_is_a_policy_error(
    fake: FakeGoogle, make_config: Any
) -> None:
    fake.script(Reply(200, {}))  # what Imagen answers when the safety filter drops everything
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model="google/imagen-4.0-fast-generate-001", prompt="a fox")
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "content_policy_violation"


def test_503_falls_back_to_the_next_model(fake: FakeGoogle, make_config: Any) -> None:
    busy = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    fake.script(Reply(503, busy))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(
            gw.url,
            model=f"google/{GEMINI}",
            prompt="a fox",
            size="1024x1024",
            orq={"fallbacks": [{"model": "placeholder/x"}]},
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert len(fake.requests) == 1


def test_an_unspecified_stop_falls_back_where_a_refusal_would_not(
    fake: FakeGoogle, make_config: Any
) -> None:
    fake.script(Reply(200, finished("IMAGE_OTHER")))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(
            gw.url,
            model=f"google/{GEMINI}",
            prompt="a fox",
            size="1024x1024",
            orq={"fallbacks": [{"model": "placeholder/x"}]},
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (
            lambda url: edit(url, [png()], model="google/imagen-4.0-generate-001", prompt="x"),
            "model",
        ),
        (lambda url: generate(url, model=f"google/{GEMINI}", prompt="x", size="4096x512"), "size"),
        (
            lambda url: generate(url, model=f"google/{GEMINI}", prompt="x", output_format="jpeg"),
            "output_format",
        ),
        (lambda url: edit(url, [png()] * 4, model=f"google/{GEMINI}", prompt="x"), "image"),
        (lambda url: generate(url, model="google/gemini-2.5-flash", prompt="x"), "model"),
    ],
)
def test_what_google_cannot_do_is_never_sent(
    fake: FakeGoogle, make_config: Any, call: Any, param: str
) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = call(gw.url)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "unsupported_engine"
    assert error_of(r)["param"] == param
    assert fake.requests == []


def test_an_edit_with_a_mask_skips_gemini(fake: FakeGoogle, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = edit(gw.url, [png()], mask=png(), model=f"google/{GEMINI}", prompt="x")
    assert r.status_code == 400, r.text
    assert error_of(r)["param"] == "mask"
    assert fake.requests == []


def test_a_failing_call_among_parallel_ones_fails_the_request_cleanly(
    fake: FakeGoogle, make_config: Any
) -> None:
    fake.script(Reply(), Reply(429, EXHAUSTED, retry_after="0"))  # n=2: one call fails
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = generate(gw.url, model=f"google/{GEMINI}", prompt="a fox", n=2)
    assert r.status_code == 429, r.text
    assert error_of(r)["code"] == "rate_limit_exceeded"
