"""Stability AI through the gateway over real HTTP, against a fake v2beta API on 127.0.0.1."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.recorder import answer_images, upload
from fakes.stability import FakeStability, Reply
from live import EDITS, GEN, live_gateway, post
from PIL import Image


@pytest.fixture
def fake() -> Iterator[FakeStability]:
    with FakeStability() as server:
        yield server


def edit(gw: Any, model: str, *, mask: bytes | None = None, side: int = 40) -> httpx.Response:
    files = [("image", ("in.png", upload(Image.new("RGB", (side, side), (5, 6, 7))), "image/png"))]
    if mask is not None:
        files.append(("mask", ("mask.png", mask, "image/png")))
    return post(
        gw,
        EDITS,
        data={"model": model, "prompt": "a hat", "response_format": "b64_json"},
        files=files,
    )


def test_generation_is_multipart_with_aspect_ratio(fake: FakeStability, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": "stability/stable-image-core",
                "prompt": "a fox",
                "n": 2,
                "size": "1792x1024",
                "output_format": "webp",
                "seed": 3,
                "response_format": "b64_json",
            },
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert len(fake.seen) == 2  # one image per call: n fanned out
    for seen in fake.seen:
        assert seen.path == "/v2beta/stable-image/generate/core"
        assert seen.headers["Accept"] == "image/*"
        assert seen.headers["Content-Type"].startswith("multipart/form-data")
    sent = sorted(({k: v[0] for k, v in s.fields.items()} for s in fake.seen),
                  key=lambda fields: fields["seed"])  # fmt: skip
    # each parallel call draws its own picture: seed, seed+1 (the same seed twice would not)
    assert sent == [
        {"prompt": "a fox", "aspect_ratio": "16:9", "output_format": "webp", "seed": seed}
        for seed in ("3", "4")
    ]
    assert [img.format for img in answer_images(r.json())] == ["WEBP", "WEBP"]


def test_sd3_models_name_the_model_and_mode(fake: FakeStability, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw, GEN, json={"model": "stability/sd3.5-large", "prompt": "p", "size": "1024x1536"}
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    fields = {k: v[0] for k, v in fake.seen[0].fields.items()}
    assert fields == {
        "prompt": "p",
        "aspect_ratio": "2:3",
        "model": "sd3.5-large",
        "mode": "text-to-image",
    }


def test_edits_pick_image_to_image_or_inpaint(fake: FakeStability, make_config: Any) -> None:
    mask = Image.new("RGBA", (40, 40), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 20, 40))  # left half: edit
    with live_gateway(make_config(providers=fake.providers(image_strength=0.7))) as gw:
        results = [
            edit(gw, "stability/stable-image-ultra"),
            edit(gw, "stability/stable-image-ultra", mask=upload(mask)),
            edit(gw, "stability/core"),
            edit(gw, "stability/sd3.5-medium"),
            edit(gw, "stability/remove-background"),
        ]
    for r in results:
        assert r.status_code == 200, r.text
        assert answer_images(r.json())[0].size == (40, 40)
    assert fake.violations == []
    paths = [s.path.removeprefix("/v2beta/stable-image/") for s in fake.seen]
    assert paths == [
        "generate/ultra",
        "edit/inpaint",
        "edit/inpaint",
        "generate/sd3",
        "edit/remove-background",
    ]
    i2i, inpaint, core, sd3, rembg = fake.seen
    assert i2i.field("strength") == "0.7" and "aspect_ratio" not in i2i.fields
    sent_mask = Image.open(io.BytesIO(inpaint.files["mask"][2]))
    assert sent_mask.getpixel((5, 5)) == 255 and sent_mask.getpixel((35, 5)) == 0  # white = edit
    assert "mask" not in core.files  # no mask: Stability uses the image's alpha, like OpenAI
    assert sd3.field("mode") == "image-to-image" and sd3.field("model") == "sd3.5-medium"
    assert rembg.fields == {} and set(rembg.files) == {"image"}


def test_moderation_and_filtering_are_content_policy(fake: FakeStability, make_config: Any) -> None:
    fake.script(
        Reply(
            403,
            {
                "id": "e1",
                "name": "content_moderation",
                "errors": ["Your request was flagged by our content moderation system"],
            },
        )
    )
    with live_gateway(make_config(providers=fake.providers())) as gw:
        moderated = post(gw, GEN, json={"model": "stability/core", "prompt": "p"})
        fake.filtered = 1
        filtered = post(
            gw,
            GEN,
            json={
                "model": "stability/core",
                "prompt": "p",
                "fallbacks": [{"model": "placeholder/x"}],
            },
        )
        fake.script(Reply(422, {"id": "e2", "name": "invalid_prompt",
                                "errors": ["prompt was flagged as NSFW"]}))  # fmt: skip
        unprocessable = post(gw, GEN, json={"model": "stability/core", "prompt": "p"})
    for r in (moderated, filtered, unprocessable):
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "content_policy_violation"
    assert "flagged" in moderated.json()["error"]["message"]


def test_http_errors_map_and_fall_back(fake: FakeStability, make_config: Any) -> None:
    body = {
        "model": "stability/core",
        "prompt": "p",
        "size": "64x64",
        "fallbacks": [{"model": "placeholder/x"}],
    }
    with live_gateway(make_config(providers=fake.providers())) as gw:
        fake.script(Reply(401, {"id": "e", "name": "unauthorized", "errors": ["bad key"]}))
        unauthorized = post(gw, GEN, json=body)
        fake.script(
            Reply(429, {"id": "e", "name": "rate_limit", "errors": ["slow"]}, {"Retry-After": "0"})
        )
        limited = post(gw, GEN, json={"model": "stability/core", "prompt": "p"})
        fake.script(Reply(500, {"id": "e", "name": "internal_error", "errors": ["boom"]}))
        fallen = post(gw, GEN, json=body)
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"]["message"] == "bad key"
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert fallen.status_code == 200 and fallen.headers["x-orq-model"] == "placeholder/x"
    assert len(fake.seen) == 3


def test_what_a_model_cannot_do_is_never_sent(fake: FakeStability, make_config: Any) -> None:
    image = upload(Image.new("RGB", (32, 32)))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        variation = post(
            gw,
            "/v2/router/images/variations",
            data={"model": "stability/core"},
            files={"image": ("a.png", image, "image/png")},
        )
        webp = post(
            gw, GEN, json={"model": "stability/sd3.5-large", "prompt": "p", "output_format": "webp"}
        )
        unknown = post(gw, GEN, json={"model": "stability/sdxl-0.9", "prompt": "p"})
        generate_on_tool = post(gw, GEN, json={"model": "stability/inpaint", "prompt": "p"})
    for r in (variation, webp, unknown, generate_on_tool):
        assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_engine", r.text
    assert fake.seen == []
