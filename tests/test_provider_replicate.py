"""Replicate through the gateway over real HTTP, against a fake predictions API on 127.0.0.1."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.client import answered_images
from fakes.replicate import FakeReplicate, Reply
from imagekit import decode_data_uri, encode, solid
from live import EDITS, GEN, live_gateway, post
from PIL import Image
from waiting import wait_until

SCHNELL = "replicate/black-forest-labs/flux-schnell"
PRO = "replicate/black-forest-labs/flux-1.1-pro"


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        yield server


def test_batching_model_gets_num_outputs(fake: FakeReplicate, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": SCHNELL,
                "prompt": "a fox",
                "n": 3,
                "size": "1792x1024",
                "output_format": "jpeg",
                "seed": 5,
            },
        )
        assert r.status_code == 200, r.text
        images = answered_images(r)  # gateway URLs: fetched while it runs
    assert fake.violations == []
    (create,) = fake.creates()
    assert create == {
        "input": {
            "prompt": "a fox",
            "aspect_ratio": "16:9",
            "num_outputs": 3,
            "output_format": "jpg",
            "seed": 5,
        }
    }
    assert fake.requests[0].path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert [i.format for i in images] == ["JPEG"] * 3
    assert fake.polls() == 2  # processing, then succeeded


def test_single_output_model_fans_out(fake: FakeReplicate, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json={"model": PRO, "prompt": "p", "n": 2, "response_format": "b64_json"})
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert [c["input"] for c in fake.creates()] == [{"prompt": "p"}, {"prompt": "p"}]
    assert len(answered_images(r)) == 2


def test_pinned_version_and_prefer_wait(fake: FakeReplicate, make_config: Any) -> None:
    version = "a" * 64
    with live_gateway(make_config(providers=fake.providers(wait_s=5))) as gw:
        r = post(gw, GEN, json={"model": f"replicate/someone/custom:{version}", "prompt": "p"})
    assert r.status_code == 200, r.text
    assert fake.violations == []
    (seen,) = [s for s in fake.requests if s.method == "POST"]
    assert seen.path == "/v1/predictions"
    assert seen.json == {"version": version, "input": {"prompt": "p"}}
    assert seen.headers["Prefer"] == "wait=5"


def test_kontext_edit_sends_a_data_uri(fake: FakeReplicate, make_config: Any) -> None:
    source = solid((40, 40), (1, 2, 3))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={"model": "replicate/black-forest-labs/flux-kontext-pro", "prompt": "paint it"},
            files={"image": ("in.png", source, "image/png")},
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    (create,) = fake.creates()
    sent = decode_data_uri(create["input"]["input_image"])
    assert sent is not None and sent.size == (40, 40)
    assert create["input"]["aspect_ratio"] == "match_input_image"


def test_fill_edit_converts_the_mask(fake: FakeReplicate, make_config: Any) -> None:
    mask = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (16, 0, 32, 32))  # right half: edit
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={"model": "replicate/black-forest-labs/flux-fill-pro", "prompt": "sky"},
            files=[
                ("image", ("i.png", solid((32, 32), 0), "image/png")),
                ("mask", ("m.png", encode(mask), "image/png")),
            ],
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    sent = decode_data_uri(fake.creates()[0]["input"]["mask"])
    assert sent is not None
    assert sent.getpixel((28, 3)) == 255 and sent.getpixel((3, 3)) == 0


def test_failed_predictions_map_by_error(fake: FakeReplicate, make_config: Any) -> None:
    fake.fail_with.extend(["NSFW content detected. Try a different prompt.", "CUDA out of memory"])
    with live_gateway(make_config(providers=fake.providers())) as gw:
        nsfw = post(gw, GEN, json={"model": PRO, "prompt": "p"})
        oom = post(
            gw,
            GEN,
            json={
                "model": PRO,
                "prompt": "p",
                "size": "64x64",
                "fallbacks": [{"model": "placeholder/x"}],
            },
        )
    assert nsfw.status_code == 400, nsfw.text
    assert nsfw.json()["error"]["code"] == "content_policy_violation"
    assert "NSFW" in nsfw.json()["error"]["message"]
    assert oom.status_code == 200, oom.text  # a failed job (502) is fallback-eligible
    assert oom.headers["x-orq-model"] == "placeholder/x"


def test_http_errors_are_mapped(fake: FakeReplicate, make_config: Any) -> None:
    fake.script(
        Reply(
            422,
            {
                "title": "Input validation failed",
                "detail": "prompt is too long",
                "status": 422,
                "invalid_fields": [],
            },
        ),
        Reply(
            401,
            {"title": "Unauthenticated", "detail": "You did not pass a valid token", "status": 401},
        ),
        Reply(503, {"detail": "Service unavailable"}),
    )
    body = {"model": PRO, "prompt": "p", "size": "64x64", "fallbacks": [{"model": "placeholder/x"}]}
    with live_gateway(make_config(providers=fake.providers())) as gw:
        invalid, auth, unavailable = (post(gw, GEN, json=body) for _ in range(3))
    assert (invalid.status_code, invalid.json()["error"]["message"]) == (422, "prompt is too long")
    assert auth.status_code == 401
    assert auth.json()["error"]["code"] == "provider_credential_invalid"
    assert unavailable.status_code == 200 and unavailable.headers["x-orq-model"] == "placeholder/x"


def test_call_timeout_stops_polling_and_cancels(fake: FakeReplicate, make_config: Any) -> None:
    fake.never_finish = True
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json={"model": PRO, "prompt": "p", "timeout": {"call_timeout": 300}})
        polls_at_answer = len(fake.received(method="GET", path="/predictions/pred-1"))
        wait_until(lambda: fake.cancels, "the abandoned prediction is cancelled in the background")
        # Barrier instead of a sleep: a second prediction polled by the same gateway at the
        # same interval stays processing for three polls. A poll loop that had survived its
        # attempt would have polled the first prediction again meanwhile.
        fake.never_finish, fake.running_polls = False, 3
        barrier = post(gw, GEN, json={"model": PRO, "prompt": "q"})
        polls_later = len(fake.received(method="GET", path="/predictions/pred-1"))
    assert r.status_code == 504, r.text
    assert polls_at_answer >= 2  # it really was polling
    assert barrier.status_code == 200, barrier.text
    assert polls_later == polls_at_answer  # and stopped when the attempt timed out
    assert fake.cancels == ["pred-1"]  # the abandoned prediction was cancelled upstream


def test_what_a_model_cannot_do_is_never_sent(fake: FakeReplicate, make_config: Any) -> None:
    image = solid((32, 32), 0)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        edit = post(
            gw,
            EDITS,
            data={"model": SCHNELL, "prompt": "p"},
            files={"image": ("a.png", image, "image/png")},
        )
        webp = post(
            gw,
            GEN,
            json={
                "model": "replicate/black-forest-labs/flux-kontext-pro",
                "prompt": "p",
                "output_format": "webp",
            },
        )
    assert edit.status_code == 400 and edit.json()["error"]["code"] == "unsupported_engine"
    assert webp.status_code == 400 and webp.json()["error"]["param"] == "output_format"
    assert fake.requests == []


def test_mask_conversion_keeps_an_opaque_mask(fake: FakeReplicate, make_config: Any) -> None:
    """An already-opaque black/white mask is passed in the white-is-edit convention."""
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (0, 0, 8, 8))
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={"model": "replicate/black-forest-labs/flux-fill-pro", "prompt": "sky"},
            files=[
                ("image", ("i.png", solid((32, 32), 0), "image/png")),
                ("mask", ("m.png", buf.getvalue(), "image/png")),
            ],
        )
    assert r.status_code == 200, r.text
    sent = decode_data_uri(fake.creates()[0]["input"]["mask"])
    assert sent is not None and sent.getpixel((2, 2)) == 255 and sent.getpixel((20, 20)) == 0
