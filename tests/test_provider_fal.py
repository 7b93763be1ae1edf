"""fal through the gateway over real HTTP, against a fake fal queue/sync API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakes.client import answered_images
from fakes.fal import FakeFal, Reply
from imagekit import decode_data_uri, encode, solid
from live import EDITS, GEN, live_gateway, post
from PIL import Image
from waiting import wait_until

DEV = "fal/fal-ai/flux/dev"


@pytest.fixture
def fake() -> Iterator[FakeFal]:
    with FakeFal() as server:
        yield server


def test_queue_generation_batches_num_images(fake: FakeFal, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": DEV,
                "prompt": "a fox",
                "n": 6,
                "size": "1024x768",
                "output_format": "jpeg",
                "response_format": "b64_json",
            },
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    inputs = sorted(fake.inputs(), key=lambda b: -b["num_images"])
    assert inputs == [
        {"prompt": "a fox", "image_size": "landscape_4_3", "output_format": "jpeg", "num_images": n}
        for n in (4, 2)
    ]
    assert {s.path for s in fake.received(method="POST")} == {"/queue/fal-ai/flux/dev"}
    # status URLs use the app id (fal-ai/flux), as fal's do
    assert all("/queue/fal-ai/flux/requests/" in s.path for s in fake.received(method="GET"))
    images = answered_images(r)
    assert len(images) == 6 and {i.format for i in images} == {"JPEG"}


def test_parallel_calls_get_their_own_seed(fake: FakeFal, make_config: Any) -> None:
    """n beyond one call's ``num_images`` (or a model without it) runs parallel calls; the
    i-th asks for ``seed`` + i, so no two calls draw the same pictures."""
    ultra = "fal/fal-ai/flux-pro/v1.1-ultra"
    with live_gateway(make_config(providers=fake.providers())) as gw:
        batched = post(gw, GEN, json={"model": DEV, "prompt": "p", "n": 6, "seed": 5})
        batched_inputs = fake.inputs()
        fake.requests.clear()
        single = post(gw, GEN, json={"model": ultra, "prompt": "p", "n": 2, "seed": 5})
    assert batched.status_code == 200 and single.status_code == 200, (batched.text, single.text)
    assert fake.violations == []
    assert {i["num_images"]: i["seed"] for i in batched_inputs} == {4: 5, 2: 6}
    assert sorted(i["seed"] for i in fake.inputs()) == [5, 6]


def test_sync_mode_and_custom_sizes(fake: FakeFal, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers(mode="sync"))) as gw:
        custom = post(gw, GEN, json={"model": DEV, "prompt": "p", "size": "640x480"})
        ultra = post(
            gw,
            GEN,
            json={"model": "fal/fal-ai/flux-pro/v1.1-ultra", "prompt": "p", "size": "1792x1024"},
        )
    assert custom.status_code == 200 and ultra.status_code == 200, (custom.text, ultra.text)
    assert fake.violations == []
    first, second = fake.inputs()
    assert first["image_size"] == {"width": 640, "height": 480}
    assert second == {"prompt": "p", "aspect_ratio": "16:9"}  # one image per call: no num_images
    assert [s.path for s in fake.received(method="POST")] == [
        "/sync/fal-ai/flux/dev",
        "/sync/fal-ai/flux-pro/v1.1-ultra",
    ]
    assert fake.polls() == 0


def test_edits_send_data_uris_and_a_white_is_edit_mask(fake: FakeFal, make_config: Any) -> None:
    source = solid((32, 32), (9, 9, 9))
    mask = Image.new("RGBA", (32, 32), (255, 255, 255, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 10))  # top band transparent: edit it
    with live_gateway(make_config(providers=fake.providers())) as gw:
        kontext = post(
            gw,
            EDITS,
            data={"model": "fal/fal-ai/flux-pro/kontext", "prompt": "p"},
            files={"image": ("a.png", source, "image/png")},
        )
        inpaint = post(
            gw,
            EDITS,
            data={"model": "fal/fal-ai/flux-lora/inpainting", "prompt": "p"},
            files=[
                ("image", ("a.png", source, "image/png")),
                ("mask", ("m.png", encode(mask), "image/png")),
            ],
        )
    assert kontext.status_code == 200 and inpaint.status_code == 200, (kontext.text, inpaint.text)
    assert fake.violations == []
    k, i = fake.inputs()
    sent = decode_data_uri(k["image_url"])
    assert sent is not None and sent.getpixel((0, 0)) == (9, 9, 9)
    sent_mask = decode_data_uri(i["mask_url"])
    assert sent_mask is not None
    assert sent_mask.getpixel((5, 2)) == 255 and sent_mask.getpixel((5, 30)) == 0


def test_nsfw_flags_drop_images_or_refuse(fake: FakeFal, make_config: Any) -> None:
    fake.nsfw.extend([[True, False], [True]])
    with live_gateway(make_config(providers=fake.providers())) as gw:
        partial = post(
            gw, GEN, json={"model": DEV, "prompt": "p", "n": 2, "response_format": "b64_json"}
        )
        refused = post(gw, GEN, json={"model": DEV, "prompt": "p"})
    assert partial.status_code == 200, partial.text
    assert len(partial.json()["data"]) == 1
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "content_policy_violation"


def test_errors_are_mapped_and_fall_back(fake: FakeFal, make_config: Any) -> None:
    fake.script(
        Reply(
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "prompt"],
                        "msg": "flagged",
                        "type": "content_policy_violation",
                    }
                ]
            },
        ),
        key="result",
    )
    fallbacks = [{"model": "placeholder/x"}]
    with live_gateway(make_config(providers=fake.providers())) as gw:
        policy = post(gw, GEN, json={"model": DEV, "prompt": "p"})
        fake.script(Reply(401, {"detail": "Invalid key"}), Reply(503, {"detail": "busy"}))
        auth = post(gw, GEN, json={"model": DEV, "prompt": "p", "fallbacks": fallbacks})
        busy = post(
            gw, GEN, json={"model": DEV, "prompt": "p", "size": "64x64", "fallbacks": fallbacks}
        )
    assert policy.status_code == 400, policy.text
    assert policy.json()["error"]["code"] == "content_policy_violation"
    assert auth.status_code == 401  # answered at once: no fallback on a 401
    assert busy.status_code == 200 and busy.headers["x-orq-model"] == "placeholder/x"


def test_call_timeout_stops_polling_and_cancels(fake: FakeFal, make_config: Any) -> None:
    fake.never_finish = True
    first = "/queue/fal-ai/flux/requests/req-1/status"
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json={"model": DEV, "prompt": "p", "timeout": {"call_timeout": 300}})
        polls_at_answer = len(fake.received(method="GET", path=first))
        wait_until(lambda: fake.cancels, "the abandoned request is cancelled in the background")
        # Barrier instead of a sleep: a second request polled by the same gateway at the same
        # interval stays in progress for three polls. A poll loop that had survived its
        # attempt would have polled the first request again meanwhile.
        fake.never_finish, fake.running_polls = False, 3
        barrier = post(gw, GEN, json={"model": DEV, "prompt": "q"})
        polls_later = len(fake.received(method="GET", path=first))
    assert r.status_code == 504, r.text
    assert polls_at_answer >= 2  # it really was polling
    assert barrier.status_code == 200, barrier.text
    assert polls_later == polls_at_answer  # and stopped when the attempt timed out
    assert fake.cancels == ["req-1"]
    assert fake.received(method="PUT")[0].path == "/queue/fal-ai/flux/requests/req-1/cancel"


def test_what_a_model_cannot_do_is_never_sent(fake: FakeFal, make_config: Any) -> None:
    image = solid((32, 32), 0)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        variation = post(
            gw,
            "/v2/router/images/variations",
            data={"model": DEV},
            files={"image": ("a.png", image, "image/png")},
        )
        edit = post(
            gw,
            EDITS,
            data={"model": DEV, "prompt": "p"},
            files={"image": ("a.png", image, "image/png")},
        )
        webp = post(gw, GEN, json={"model": DEV, "prompt": "p", "output_format": "webp"})
    for r in (variation, edit, webp):
        assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_engine", r.text
    assert fake.requests == []
