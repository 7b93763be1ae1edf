"""Amazon Bedrock through the gateway over real HTTP, against a fake InvokeModel on 127.0.0.1
that checks every request's SigV4 signature with botocore."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.bedrock import FakeBedrock, Reply, aws_error
from fakes.client import answered_images
from imagekit import encode, solid
from live import EDITS, GEN, live_gateway, post
from PIL import Image

TITAN = "amazon.titan-image-generator-v2:0"
NOVA = "amazon.nova-canvas-v1:0"
SD35 = "stability.sd3-5-large-v1:0"


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server


def test_titan_generation_is_signed_and_batched(fake: FakeBedrock, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": f"bedrock/{TITAN}",
                "prompt": "a fox",
                "n": 7,
                "size": "1792x1024",
                "quality": "hd",
                "seed": 9,
                "response_format": "b64_json",
            },
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert fake.verified == 2  # both calls carried a valid SigV4 signature
    assert fake.requests[0].raw_path == "/model/amazon.titan-image-generator-v2%3A0/invoke"
    counts = sorted(b["imageGenerationConfig"]["numberOfImages"] for b in fake.bodies())
    assert counts == [2, 5]  # numberOfImages ≤ 5 per call
    (body,) = [b for b in fake.bodies() if b["imageGenerationConfig"]["numberOfImages"] == 5]
    assert body["taskType"] == "TEXT_IMAGE"
    assert body["textToImageParams"] == {"text": "a fox"}
    config = body["imageGenerationConfig"]
    assert (config["width"], config["height"], config["quality"], config["seed"]) == (
        1152,
        640,
        "premium",
        9,
    )
    assert len(answered_images(r)) == 7


def test_nova_and_stability_bodies(fake: FakeBedrock, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        nova = post(gw, GEN, json={"model": f"bedrock/{NOVA}", "prompt": "p", "size": "1000x1000"})
        sd = post(
            gw,
            GEN,
            json={
                "model": f"bedrock/{SD35}",
                "prompt": "p",
                "size": "1024x1792",
                "output_format": "jpeg",
                "n": 2,
            },
        )
    assert nova.status_code == 200 and sd.status_code == 200, (nova.text, sd.text)
    assert fake.violations == [] and fake.verified == 3
    nova_body, sd_body, _ = fake.bodies()
    assert nova_body["imageGenerationConfig"] == {"width": 992, "height": 992, "numberOfImages": 1}
    assert sd_body == {
        "prompt": "p",
        "mode": "text-to-image",
        "aspect_ratio": "9:16",
        "output_format": "jpeg",
    }


def test_edits_and_variations_pick_the_task(fake: FakeBedrock, make_config: Any) -> None:
    image = solid((32, 32), (100, 100, 100))
    mask = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 8))  # top band: edit
    with live_gateway(make_config(providers=fake.providers())) as gw:
        inpaint = post(
            gw,
            EDITS,
            data={"model": f"bedrock/{TITAN}", "prompt": "a hat"},
            files=[
                ("image", ("i.png", image, "image/png")),
                ("mask", ("m.png", encode(mask), "image/png")),
            ],
        )
        guided = post(
            gw,
            EDITS,
            data={"model": f"bedrock/{NOVA}", "prompt": "in winter"},
            files=[
                ("image[]", ("a.png", image, "image/png")),
                ("image[]", ("b.png", image, "image/png")),
            ],
        )
        variation = post(
            gw,
            "/v2/router/images/variations",
            data={"model": f"bedrock/{TITAN}", "n": "2"},
            files={"image": ("i.png", image, "image/png")},
        )
    for r in (inpaint, guided, variation):
        assert r.status_code == 200, r.text
    assert fake.violations == []
    first, second, third = fake.bodies()
    assert first["taskType"] == "INPAINTING"
    sent_mask = Image.open(io.BytesIO(base64.b64decode(first["inPaintingParams"]["maskImage"])))
    assert sent_mask.getpixel((4, 2)) == 0 and sent_mask.getpixel((4, 20)) == 255  # black = edit
    assert first["inPaintingParams"]["text"] == "a hat"
    assert second["taskType"] == "IMAGE_VARIATION"
    assert len(second["imageVariationParams"]["images"]) == 2
    assert second["imageVariationParams"]["text"] == "in winter"
    assert third["taskType"] == "IMAGE_VARIATION" and "text" not in third["imageVariationParams"]
    assert third["imageGenerationConfig"]["numberOfImages"] == 2


def test_a_wrong_secret_is_rejected_by_the_signature_check(
    fake: FakeBedrock, make_config: Any
) -> None:
    entry = fake.providers()["bedrock"] | {"secret_access_key": "not-the-secret"}
    with live_gateway(make_config(providers={"bedrock": entry})) as gw:
        r = post(gw, GEN, json={"model": f"bedrock/{TITAN}", "prompt": "p"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "provider_credential_invalid"
    assert "InvalidSignatureException" in r.json()["error"]["message"]
    assert fake.verified == 0 and len(fake.requests) == 1


def test_session_token_env_credentials_and_api_key(make_config: Any, monkeypatch: Any) -> None:
    with FakeBedrock(session_token="session-tok", region="eu-west-1") as fake:
        with live_gateway(make_config(providers=fake.providers())) as gw:
            r = post(gw, GEN, json={"model": f"bedrock/{TITAN}", "prompt": "p"})
        assert r.status_code == 200, r.text
        assert fake.requests[0].headers["X-Amz-Security-Token"] == "session-tok"
        assert fake.verified == 1
    with FakeBedrock(access_key="AKIDENV", secret_key="env-secret") as fake:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
        entry = {"base_url": fake.url, "region": "us-east-1"}  # no keys: botocore's chain
        with live_gateway(make_config(providers={"bedrock": entry})) as gw:
            r = post(gw, GEN, json={"model": f"bedrock/{NOVA}", "prompt": "p"})
        assert r.status_code == 200, r.text
        assert fake.verified == 1
    with FakeBedrock(api_key="bedrock-api-key") as fake:
        entry = {"base_url": fake.url, "api_key": "bedrock-api-key"}
        with live_gateway(make_config(providers={"bedrock": entry})) as gw:
            r = post(gw, GEN, json={"model": f"bedrock/{NOVA}", "prompt": "p"})
        assert r.status_code == 200, r.text
        assert fake.requests[0].headers["Authorization"] == "Bearer bedrock-api-key"


def test_errors_are_mapped(fake: FakeBedrock, make_config: Any) -> None:
    blocked = "This request has been blocked by our content filters."
    fallback = {"fallbacks": [{"model": "placeholder/x"}], "size": "256x256"}
    with live_gateway(make_config(providers=fake.providers())) as gw:
        fake.script(aws_error(400, "ValidationException", blocked))
        policy = post(gw, GEN, json={"model": f"bedrock/{TITAN}", "prompt": "p", **fallback})
        fake.script(aws_error(429, "ThrottlingException", "Too many requests, please wait."))
        throttled = post(gw, GEN, json={"model": f"bedrock/{TITAN}", "prompt": "p"})
        fake.script(aws_error(424, "ModelErrorException", "The model failed"))
        model_error = post(gw, GEN, json={"model": f"bedrock/{TITAN}", "prompt": "p", **fallback})
        fake.script(aws_error(503, "ServiceUnavailableException", "Service unavailable"))
        unavailable = post(gw, GEN, json={"model": f"bedrock/{NOVA}", "prompt": "p", **fallback})
        fake.script(
            Reply(200, {"seeds": [1], "finish_reasons": ["Filter reason: prompt"], "images": []})
        )
        filtered = post(gw, GEN, json={"model": f"bedrock/{SD35}", "prompt": "p"})
    assert policy.status_code == 400, policy.text
    assert policy.json()["error"]["code"] == "content_policy_violation"
    assert blocked in policy.json()["error"]["message"]
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "rate_limit_exceeded"
    for r in (model_error, unavailable):
        assert r.status_code == 200 and r.headers["x-orq-model"] == "placeholder/x", r.text
    assert filtered.status_code == 400
    assert filtered.json()["error"]["code"] == "content_policy_violation"
    assert fake.violations == []


def test_what_a_model_cannot_do_is_never_sent(fake: FakeBedrock, make_config: Any) -> None:
    image = solid((32, 32), 0)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        odd_size = post(
            gw, GEN, json={"model": f"bedrock/{TITAN}", "prompt": "p", "size": "300x300"}
        )
        core_edit = post(
            gw,
            EDITS,
            data={"model": "bedrock/stability.stable-image-core-v1:1", "prompt": "p"},
            files={"image": ("a.png", image, "image/png")},
        )
        not_images = post(
            gw, GEN, json={"model": "bedrock/meta.llama3-8b-instruct-v1:0", "prompt": "p"}
        )
        fallen = post(
            gw,
            GEN,
            json={
                "model": f"bedrock/{TITAN}",
                "prompt": "p",
                "size": "300x300",
                "fallbacks": [{"model": "placeholder/x"}],
            },
        )
    assert odd_size.status_code == 400 and odd_size.json()["error"]["param"] == "size"
    for r in (core_edit, not_images):
        assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_engine", r.text
    assert fallen.status_code == 200 and fallen.headers["x-orq-model"] == "placeholder/x"
    assert fake.requests == []


def test_the_fake_signature_check_covers_path_body_and_headers(
    fake: FakeBedrock, make_config: Any
) -> None:
    """Guard on the guard: a signed request altered in any signed part no longer verifies."""
    import dataclasses

    with live_gateway(make_config(providers=fake.providers())) as gw:
        assert post(gw, GEN, json={"model": f"bedrock/{TITAN}", "prompt": "p"}).status_code == 200
    seen = fake.requests[0]
    assert fake.signature_problem(seen) is None
    tampered = [
        dataclasses.replace(seen, body=seen.body.replace(b'"p"', b'"q"')),
        dataclasses.replace(seen, raw_path=seen.raw_path.replace("v2", "v1")),
        dataclasses.replace(seen, headers={**seen.headers, "Content-Type": "text/plain"}),
    ]
    for altered in tampered:
        assert fake.signature_problem(altered) == "InvalidSignatureException"
