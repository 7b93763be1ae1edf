"""BFL (FLUX) through the gateway over real HTTP, against a fake FLUX API on 127.0.0.1."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.bfl import FakeBFL, Reply
from fakes.client import answered_images
from imagekit import encode, solid
from live import EDITS, GEN, live_gateway, post
from PIL import Image


@pytest.fixture
def fake() -> Iterator[FakeBFL]:
    with FakeBFL() as server:
        yield server


def test_generation_translates_size_fans_out_n_and_polls(fake: FakeBFL, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": "bfl/flux-pro-1.1",
                "prompt": "a red fox",
                "size": "1024x768",
                "n": 2,
                "output_format": "jpeg",
                "response_format": "b64_json",
            },
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    submits = fake.submits()
    assert len(submits) == 2  # one image per task: n fanned out
    assert submits[0] == {
        "prompt": "a red fox",
        "width": 1024,
        "height": 768,
        "output_format": "jpeg",
    }
    assert fake.polls() == 4  # each task: one Pending, then Ready
    images = answered_images(r)
    assert [img.format for img in images] == ["JPEG", "JPEG"]
    assert r.headers["x-orq-model"] == "bfl/flux-pro-1.1"


def test_sizes_are_fitted_to_the_model_grid_or_ratio(fake: FakeBFL, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        big = post(gw, GEN, json={"model": "bfl/flux-pro-1.1", "prompt": "p", "size": "1792x1024"})
        ultra = post(
            gw, GEN, json={"model": "bfl/flux-pro-1.1-ultra", "prompt": "p", "size": "1024x1792"}
        )
    assert big.status_code == 200 and ultra.status_code == 200, (big.text, ultra.text)
    assert fake.violations == []
    first, second = fake.submits()
    assert (first["width"], first["height"]) == (1440, 832)  # ≤ 1440, multiples of 32
    assert second["aspect_ratio"] == "9:16" and "width" not in second


def test_kontext_edit_sends_the_image_as_base64(fake: FakeBFL, make_config: Any) -> None:
    source = solid((48, 48), (10, 200, 30))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={
                "model": "bfl/flux-kontext-pro",
                "prompt": "make it blue",
                "size": "1536x1024",
                "response_format": "b64_json",
            },
            files={"image": ("in.png", source, "image/png")},
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    (sent,) = fake.submits()
    assert base64.b64decode(sent["input_image"]) == source
    assert sent["aspect_ratio"] == "3:2" and sent["prompt"] == "make it blue"
    assert answered_images(r)[0].size == (48, 48)


def test_fill_edit_converts_the_openai_mask(fake: FakeBFL, make_config: Any) -> None:
    source = solid((32, 32), (200, 200, 200))
    mask = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 16, 32))  # left half transparent: "edit here" in OpenAI
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={"model": "bfl/flux-pro-1.0-fill", "prompt": "a window"},
            files=[
                ("image", ("in.png", source, "image/png")),
                ("mask", ("mask.png", encode(mask), "image/png")),
            ],
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    (sent,) = fake.submits()
    sent_mask = Image.open(io.BytesIO(base64.b64decode(sent["mask"])))
    assert sent_mask.getpixel((4, 4)) == 255  # BFL: white = fill
    assert sent_mask.getpixel((28, 4)) == 0


def test_moderated_task_is_a_content_policy_error(fake: FakeBFL, make_config: Any) -> None:
    fake.final.append("Content Moderated")
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": "bfl/flux-pro-1.1",
                "prompt": "p",
                "orq": {"fallbacks": [{"model": "placeholder/x"}]},
            },
        )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "content_policy_violation"
    assert "x-orq-model" not in r.headers  # a policy refusal is answered, not fallen back from


def test_rate_limit_maps_to_429_with_retry(fake: FakeBFL, make_config: Any) -> None:
    fake.script(Reply(429, {"detail": "Too many active tasks"}, {"Retry-After": "0"}))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        limited = post(gw, GEN, json={"model": "bfl/flux-pro-1.1", "prompt": "p"})
        fake.script(Reply(429, {"detail": "Too many active tasks"}, {"Retry-After": "0"}))
        retried = post(
            gw,
            GEN,
            json={"model": "bfl/flux-pro-1.1", "prompt": "p", "orq": {"retry": {"count": 1}}},
        )
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert "Too many active tasks" in limited.json()["error"]["message"]
    assert retried.status_code == 200, retried.text
    assert retried.headers["x-orq-attempts"] == "2"


def test_failure_falls_back_to_another_provider(fake: FakeBFL, make_config: Any) -> None:
    fake.script(Reply(503, {"detail": "Service Unavailable"}))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": "bfl/flux-pro-1.1",
                "prompt": "p",
                "size": "64x64",
                "orq": {"fallbacks": [{"model": "placeholder/x"}]},
            },
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert len(fake.submits()) == 1 and fake.polls() == 0


def test_errored_task_falls_back(fake: FakeBFL, make_config: Any) -> None:
    fake.final.append("Error")
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": "bfl/flux-pro-1.1",
                "prompt": "p",
                "size": "64x64",
                "fallbacks": [{"model": "placeholder/x"}],
            },
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"


def test_call_timeout_stops_a_task_that_never_finishes(fake: FakeBFL, make_config: Any) -> None:
    fake.never_ready = True
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            GEN,
            json={
                "model": "bfl/flux-pro-1.1",
                "prompt": "p",
                "orq": {"timeout": {"call_timeout": 300}},
            },
        )
        (abandoned,) = fake.tasks.values()
        polls_at_answer = abandoned["polls"]
        # Barrier instead of a sleep: a second task polled by the same gateway at the same
        # interval needs three Pending polls (two intervals or more). A poll loop that had
        # survived its attempt would have polled the first task again meanwhile.
        fake.never_ready, fake.pending_polls = False, 3
        barrier = post(gw, GEN, json={"model": "bfl/flux-pro-1.1", "prompt": "q"})
        polls_later = abandoned["polls"]
    assert r.status_code == 504, r.text  # the attempt's own timeout, not a hung request
    assert r.json()["error"]["code"] == "provider_timeout"
    assert polls_at_answer >= 2  # it really was polling
    assert barrier.status_code == 200, barrier.text
    assert polls_later == polls_at_answer  # and stopped when the attempt timed out


def test_operation_it_cannot_do_is_never_sent(fake: FakeBFL, make_config: Any) -> None:
    image = solid((32, 32), 0)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        alone = post(
            gw,
            "/v2/router/images/variations",
            data={"model": "bfl/flux-pro-1.1"},
            files={"image": ("a.png", image, "image/png")},
        )
        with_fallback = post(
            gw,
            "/v2/router/images/variations",
            data={
                "model": "bfl/flux-pro-1.1",
                "size": "256x256",
                "orq": '{"fallbacks": [{"model": "placeholder/x"}]}',
            },
            files={"image": ("a.png", image, "image/png")},
        )
        too_many = post(
            gw,
            EDITS,
            data={"model": "bfl/flux-kontext-pro", "prompt": "p"},
            files=[("image[]", (f"{i}.png", image, "image/png")) for i in range(5)],
        )
    assert alone.status_code == 400, alone.text
    assert alone.json()["error"]["code"] == "unsupported_engine"
    assert with_fallback.status_code == 200, with_fallback.text
    assert with_fallback.headers["x-orq-model"] == "placeholder/x"
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "image"
    assert fake.requests == []


def test_transient_poll_failures_are_polled_through(fake: FakeBFL, make_config: Any) -> None:
    fake.script(Reply(502, {"detail": "bad gateway"}), Reply(503, {"detail": "busy"}), key="poll")
    with live_gateway(make_config(providers=fake.providers())) as gw:
        ok = post(gw, GEN, json={"model": "bfl/flux-pro-1.1", "prompt": "p"})
        fake.script(*[Reply(503, {"detail": "down"})] * 4, key="poll")
        down = post(gw, GEN, json={"model": "bfl/flux-pro-1.1", "prompt": "p"})
    assert ok.status_code == 200, ok.text
    assert len(fake.submits()) == 2  # the first job survived two failed polls, not resubmitted
    assert down.status_code == 503  # four in a row: the attempt fails with the poll's status
