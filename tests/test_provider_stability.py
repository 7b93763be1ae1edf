"""Stability AI through the gateway over real HTTP, against a fake v2beta API on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import httpx
from fakes.client import answered_images, assert_error, assert_fell_back, error_of, fixtures
from fakes.stability import FakeStability, Reply
from imagekit import alpha_mask, image_of, png, solid
from live import EDITS, GEN, LiveGateway, live_gateway, post

fake, gw = fixtures(FakeStability)


def edit(gw: Any, model: str, *, mask: bytes | None = None, side: int = 40) -> httpx.Response:
    files = [("image", ("in.png", solid(side, (5, 6, 7)), "image/png"))]
    if mask is not None:
        files.append(("mask", ("mask.png", mask, "image/png")))
    return post(
        gw,
        EDITS,
        data={"model": model, "prompt": "a hat", "response_format": "b64_json"},
        files=files,
    )


def test_generation_is_multipart_with_aspect_ratio(fake: FakeStability, gw: LiveGateway) -> None:
    body = {
        "model": "stability/stable-image-core",
        "prompt": "a fox",
        "n": 2,
        "size": "1792x1024",
        "output_format": "webp",
        "seed": 3,
        "response_format": "b64_json",
    }
    r = post(gw, GEN, json=body)
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert len(fake.requests) == 2  # one image per call: n fanned out
    for seen in fake.requests:
        assert seen.path == "/v2beta/stable-image/generate/core"
        assert seen.headers["Accept"] == "image/*"
        assert seen.headers["Content-Type"].startswith("multipart/form-data")
    sent = sorted((s.values for s in fake.requests), key=lambda fields: fields["seed"])
    # each parallel call draws its own picture: seed, seed+1 (the same seed twice would not)
    assert sent == [
        {"prompt": "a fox", "aspect_ratio": "16:9", "output_format": "webp", "seed": seed}
        for seed in ("3", "4")
    ]
    assert [img.format for img in answered_images(r)] == ["WEBP", "WEBP"]


def test_sd3_models_name_the_model_and_mode(fake: FakeStability, gw: LiveGateway) -> None:
    r = post(gw, GEN, json={"model": "stability/sd3.5-large", "prompt": "p", "size": "1024x1536"})
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert fake.requests[0].values == {
        "prompt": "p",
        "aspect_ratio": "2:3",
        "model": "sd3.5-large",
        "mode": "text-to-image",
    }


def test_edits_pick_image_to_image_or_inpaint(fake: FakeStability, make_config: Any) -> None:
    mask = alpha_mask(40, clear=(0, 0, 20, 40))  # left half: edit
    with live_gateway(make_config(providers=fake.providers(image_strength=0.7))) as gw:
        results = [
            edit(gw, "stability/stable-image-ultra"),
            edit(gw, "stability/stable-image-ultra", mask=mask),
            edit(gw, "stability/core"),
            edit(gw, "stability/sd3.5-medium"),
            edit(gw, "stability/remove-background"),
        ]
    for r in results:
        assert answered_images(r)[0].size == (40, 40)
    assert fake.violations == []
    paths = [s.path.removeprefix("/v2beta/stable-image/") for s in fake.requests]
    assert paths == [
        "generate/ultra",
        "edit/inpaint",
        "edit/inpaint",
        "generate/sd3",
        "edit/remove-background",
    ]
    i2i, inpaint, core, sd3, rembg = fake.requests
    assert i2i.field("strength") == "0.7" and "aspect_ratio" not in i2i.fields
    mask_part = inpaint.file("mask")
    sent_mask = image_of(mask_part.data) if mask_part else None
    assert sent_mask is not None
    assert sent_mask.getpixel((5, 5)) == 255 and sent_mask.getpixel((35, 5)) == 0  # white = edit
    assert core.file("mask") is None  # no mask: Stability uses the image's alpha, like OpenAI
    assert sd3.field("mode") == "image-to-image" and sd3.field("model") == "sd3.5-medium"
    assert rembg.fields == {} and rembg.file_names == ["image"]


def test_moderation_and_filtering_are_content_policy(fake: FakeStability, gw: LiveGateway) -> None:
    flagged = ["Your request was flagged by our content moderation system"]
    fake.script(Reply(403, {"id": "e1", "name": "content_moderation", "errors": flagged}))
    moderated = post(gw, GEN, json={"model": "stability/core", "prompt": "p"})
    fake.filtered = 1
    filtered = post(
        gw,
        GEN,
        json={"model": "stability/core", "prompt": "p", "fallbacks": [{"model": "placeholder/x"}]},
    )
    fake.script(
        Reply(422, {"id": "e2", "name": "invalid_prompt", "errors": ["prompt was flagged as NSFW"]})
    )
    unprocessable = post(gw, GEN, json={"model": "stability/core", "prompt": "p"})
    for r in (moderated, filtered, unprocessable):
        assert_error(r, 400, "content_policy_violation")
    assert "flagged" in error_of(moderated)["message"]


def test_http_errors_map_and_fall_back(fake: FakeStability, gw: LiveGateway) -> None:
    body = {
        "model": "stability/core",
        "prompt": "p",
        "size": "64x64",
        "fallbacks": [{"model": "placeholder/x"}],
    }
    fake.script(Reply(401, {"id": "e", "name": "unauthorized", "errors": ["bad key"]}))
    unauthorized = post(gw, GEN, json=body)
    fake.script(Reply(429, {"id": "e", "name": "rate_limit", "errors": ["slow"]}, retry_after="0"))
    limited = post(gw, GEN, json={"model": "stability/core", "prompt": "p"})
    fake.script(Reply(500, {"id": "e", "name": "internal_error", "errors": ["boom"]}))
    fallen = post(gw, GEN, json=body)
    assert unauthorized.status_code == 401
    assert error_of(unauthorized)["message"] == "bad key"
    assert_error(limited, 429, "rate_limit_exceeded")
    assert_fell_back(fallen, fake, calls=3)


def test_what_a_model_cannot_do_is_never_sent(fake: FakeStability, gw: LiveGateway) -> None:
    variation = post(
        gw,
        "/v2/router/images/variations",
        data={"model": "stability/core"},
        files={"image": ("a.png", png(), "image/png")},
    )
    webp = post(
        gw, GEN, json={"model": "stability/sd3.5-large", "prompt": "p", "output_format": "webp"}
    )
    unknown = post(gw, GEN, json={"model": "stability/sdxl-0.9", "prompt": "p"})
    generate_on_tool = post(gw, GEN, json={"model": "stability/inpaint", "prompt": "p"})
    for r in (variation, webp, unknown, generate_on_tool):
        assert_error(r, 400, "unsupported_engine")
    assert fake.requests == []
