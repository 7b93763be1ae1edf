"""Bedrock wire rules checked against the fake InvokeModel: seeds per parallel call, Nova's
seed range, Nova edits without transparent pixels, and Stability's filtered answer."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.bedrock import NOVA_MAX_SEED, FakeBedrock, Reply
from imagekit import encode, solid
from live import EDITS, GEN, live_gateway, post
from PIL import Image

TITAN = "amazon.titan-image-generator-v2:0"
NOVA = "amazon.nova-canvas-v1:0"
SD35 = "stability.sd3-5-large-v1:0"
FALLBACK = {"fallbacks": [{"model": "placeholder/x"}], "size": "256x256"}


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server


def seeds_by_count(fake: FakeBedrock) -> dict[int, int]:
    """numberOfImages → seed of the call that asked for that many."""
    return {
        b["imageGenerationConfig"]["numberOfImages"]: b["imageGenerationConfig"]["seed"]
        for b in fake.bodies()
    }


def decoded(value: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(value)))


def test_parallel_calls_get_their_own_seed(fake: FakeBedrock, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        titan = post(gw, GEN, json={"model": f"bedrock/{TITAN}", "prompt": "p", "n": 7, "seed": 3})
        titan_bodies = fake.bodies()
        fake.requests.clear()
        sd = post(gw, GEN, json={"model": f"bedrock/{SD35}", "prompt": "p", "n": 2, "seed": 3})
    assert titan.status_code == 200 and sd.status_code == 200, (titan.text, sd.text)
    assert fake.violations == []
    assert {
        b["imageGenerationConfig"]["numberOfImages"]: b["imageGenerationConfig"]["seed"]
        for b in titan_bodies
    } == {5: 3, 2: 4}
    assert sorted(b["seed"] for b in fake.bodies()) == [3, 4]


def test_nova_seed_range_is_refused_or_wrapped(fake: FakeBedrock, make_config: Any) -> None:
    top = NOVA_MAX_SEED
    with live_gateway(make_config(providers=fake.providers())) as gw:
        over = post(gw, GEN, json={"model": f"bedrock/{NOVA}", "prompt": "p", "seed": top + 1})
        negative = post(gw, GEN, json={"model": f"bedrock/{NOVA}", "prompt": "p", "seed": -1})
        assert fake.requests == []  # refused before anything was sent
        edge = post(gw, GEN, json={"model": f"bedrock/{NOVA}", "prompt": "p", "n": 7, "seed": top})
    for r in (over, negative):
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == "seed"
        assert str(top) in r.json()["error"]["message"]
    assert edge.status_code == 200, edge.text
    assert fake.violations == []
    assert seeds_by_count(fake) == {5: top, 2: 0}  # the offset wraps inside Nova's range


def test_transparent_image_is_sent_opaque_with_its_alpha_as_mask(
    fake: FakeBedrock, make_config: Any
) -> None:
    image = Image.new("RGBA", (32, 32), (200, 10, 10, 255))
    image.paste((0, 0, 0, 0), (0, 0, 32, 8))  # top band transparent: edit here
    image.putpixel((20, 20), (200, 10, 10, 200))  # one translucent pixel, kept
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={"model": f"bedrock/{NOVA}", "prompt": "a hat"},
            files={"image": ("i.png", encode(image), "image/png")},
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    (body,) = fake.bodies()
    assert body["taskType"] == "INPAINTING"
    sent = decoded(body["inPaintingParams"]["image"])
    assert sent.mode == "RGB"
    assert sent.getpixel((20, 20)) == (200, 10, 10)  # kept pixels keep their colour
    mask = decoded(body["inPaintingParams"]["maskImage"])
    assert mask.getpixel((4, 2)) == 0 and mask.getpixel((4, 20)) == 255  # black = edit


def test_opaque_rgba_without_mask_edits_the_whole_image(
    fake: FakeBedrock, make_config: Any
) -> None:
    """No transparent pixel and no mask: OpenAI's mask-less edit changes the whole picture,
    which is a prompt-guided IMAGE_VARIATION, never an INPAINTING with nothing masked."""
    image = solid((32, 32), (10, 200, 10, 255), "RGBA")
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={"model": f"bedrock/{NOVA}", "prompt": "in winter"},
            files={"image": ("i.png", image, "image/png")},
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    (body,) = fake.bodies()
    assert body["taskType"] == "IMAGE_VARIATION"
    assert body["imageVariationParams"]["text"] == "in winter"
    assert base64.b64decode(body["imageVariationParams"]["images"][0]) == image  # as given


def test_a_mask_that_marks_nothing_is_refused(fake: FakeBedrock, make_config: Any) -> None:
    image = solid((32, 32), (100, 100, 100))
    opaque_mask = solid((32, 32), (0, 0, 0, 255), "RGBA")
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={"model": f"bedrock/{TITAN}", "prompt": "a hat"},
            files=[
                ("image", ("i.png", image, "image/png")),
                ("mask", ("m.png", opaque_mask, "image/png")),
            ],
        )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "mask"
    assert fake.requests == []


def test_transparent_variation_inputs_are_flattened(fake: FakeBedrock, make_config: Any) -> None:
    image = Image.new("RGBA", (32, 32), (10, 10, 200, 0))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            "/v2/router/images/variations",
            data={"model": f"bedrock/{NOVA}"},
            files={"image": ("i.png", encode(image), "image/png")},
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    (body,) = fake.bodies()
    assert decoded(body["imageVariationParams"]["images"][0]).mode == "RGB"


def test_stability_filtered_answer_without_images_is_a_policy_refusal(
    fake: FakeBedrock, make_config: Any
) -> None:
    filtered = Reply(200, {"finish_reasons": ["Filter reason: prompt"]})
    failed = Reply(200, {"seeds": [1], "finish_reasons": ["Inference error"], "images": []})
    with live_gateway(make_config(providers=fake.providers())) as gw:
        fake.script(filtered)
        policy = post(
            gw,
            GEN,
            json={"model": f"bedrock/{SD35}", "prompt": "p", "retry": {"count": 2}, **FALLBACK},
        )
        calls_for_policy = len(fake.requests)
        fake.script(failed)
        error = post(gw, GEN, json={"model": f"bedrock/{SD35}", "prompt": "p", **FALLBACK})
    assert policy.status_code == 400, policy.text
    assert policy.json()["error"]["code"] == "content_policy_violation"
    assert "Filter reason: prompt" in policy.json()["error"]["message"]
    assert calls_for_policy == 1  # neither retried nor fallen back from
    assert error.status_code == 200, error.text
    assert error.headers["x-orq-model"] == "placeholder/x"  # an inference error falls back


def test_a_seed_nova_cannot_take_falls_back(fake: FakeBedrock, make_config: Any) -> None:
    """Nova's seed range is data in the model table: the routing plan skips the candidate,
    so a fallback serves the request and nothing reaches Bedrock."""
    body = {"model": f"bedrock/{NOVA}", "prompt": "p", "seed": NOVA_MAX_SEED + 1, **FALLBACK}
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json=body)
        titan = post(gw, GEN, json={**body, "model": f"bedrock/{TITAN}", "size": "1024x1024"})
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert titan.status_code == 200 and titan.headers["x-orq-model"] == f"bedrock/{TITAN}"
    (sent,) = fake.bodies()  # only Titan's call: it has no seed range
    assert sent["imageGenerationConfig"]["seed"] == NOVA_MAX_SEED + 1


def test_an_error_typed_in_the_body_is_mapped(fake: FakeBedrock, make_config: Any) -> None:
    """AWS's JSON protocols name the error type in the body (``__type``), not a header."""
    typed = {
        "__type": "com.amazon.coral.service#UnrecognizedClientException",
        "Message": "The security token included in the request is invalid.",
    }
    fake.script(Reply(403, typed))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json={"model": f"bedrock/{TITAN}", "prompt": "p"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "provider_credential_invalid"
    assert "UnrecognizedClientException: The security token" in r.json()["error"]["message"]
