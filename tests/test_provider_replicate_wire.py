"""Replicate wire rules against the fake predictions + Files API: inputs of 1 MB or more are
uploaded (once per request) and passed by URL, and parallel predictions get their own seed."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.replicate import FakeReplicate, Reply
from imagekit import decode_data_uri, encode, solid
from live import EDITS, GEN, live_gateway, post
from PIL import Image

PRO = "replicate/black-forest-labs/flux-1.1-pro"
SCHNELL = "replicate/black-forest-labs/flux-schnell"
KONTEXT = "replicate/black-forest-labs/flux-kontext-pro"
KONTEXT_MAX = "replicate/black-forest-labs/flux-kontext-max"
FILL = "replicate/black-forest-labs/flux-fill-pro"


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        yield server


def noise_png(side: int, mode: str = "RGB") -> bytes:
    """A PNG that does not compress: ``side`` 640 RGB is about 1.2 MB."""
    bands = len(mode)
    img = Image.frombytes(mode, (side, side), os.urandom(side * side * bands))
    return encode(img)


def test_parallel_predictions_get_their_own_seed(fake: FakeReplicate, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        single = post(gw, GEN, json={"model": PRO, "prompt": "p", "n": 2, "seed": 5})
        single_inputs = [c["input"] for c in fake.creates()]
        fake.requests.clear()
        batched = post(gw, GEN, json={"model": SCHNELL, "prompt": "p", "n": 6, "seed": 5})
    assert single.status_code == 200 and batched.status_code == 200, (single.text, batched.text)
    assert fake.violations == []
    assert sorted(i["seed"] for i in single_inputs) == [5, 6]
    assert {c["input"]["num_outputs"]: c["input"]["seed"] for c in fake.creates()} == {4: 5, 2: 6}


def test_a_large_image_is_uploaded_once_and_sent_by_url(
    fake: FakeReplicate, make_config: Any
) -> None:
    big = noise_png(640)
    assert len(big) > 1_000_000
    # the first prediction fails (retried), the second model fails too (fallback), then n=2
    fake.script(Reply(503, {"detail": "busy"}), Reply(503, {"detail": "busy"}))
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={
                "model": KONTEXT,
                "prompt": "paint it",
                "n": "2",
                "orq": '{"retry": {"count": 1, "on_codes": [503]}, "fallbacks": [{"model": "'
                + KONTEXT_MAX
                + '"}]}',
            },
            files={"image": ("in.png", big, "image/png")},
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert fake.uploads == [big]  # one upload for every attempt, model and parallel call
    (file_id,) = fake.files
    url = f"{fake.url}/v1/files/{file_id}"
    creates = fake.creates()
    assert len(creates) == 4  # 503, retried 503, then the fallback's two parallel predictions
    assert {c["input"]["input_image"] for c in creates} == {url}
    (posted,) = fake.received(method="POST", path="/v1/files")
    assert posted.headers["Authorization"] == f"Bearer {fake.token}"
    content = posted.file("content")
    assert content is not None  # not the caller's name:
    assert (content.filename, content.content_type) == ("image.png", "image/png")


def test_small_inputs_stay_inline(fake: FakeReplicate, make_config: Any) -> None:
    small = noise_png(200)
    assert len(small) < 1_000_000
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={"model": KONTEXT, "prompt": "paint it"},
            files={"image": ("in.png", small, "image/png")},
        )
    assert r.status_code == 200, r.text
    assert fake.uploads == []
    sent = decode_data_uri(fake.creates()[0]["input"]["input_image"])
    assert sent is not None and sent.size == (200, 200)


def test_a_large_mask_is_uploaded_too(fake: FakeReplicate, make_config: Any) -> None:
    side = 2500  # a random black/white mask of 6 MP stays over 1 MB as a PNG
    raw = os.urandom(side * side).translate(bytes(0 if b < 128 else 255 for b in range(256)))
    mask = encode(Image.frombytes("L", (side, side), raw))
    image = solid((32, 32), 0)
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={"model": FILL, "prompt": "sky"},
            files=[
                ("image", ("i.png", image, "image/png")),
                ("mask", ("m.png", mask, "image/png")),
            ],
        )
    assert r.status_code == 200, r.text
    assert fake.violations == []
    (create,) = fake.creates()
    assert decode_data_uri(create["input"]["image"]) is not None  # the small image inline
    (file_id,) = fake.files
    assert create["input"]["mask"] == f"{fake.url}/v1/files/{file_id}"
    sent = Image.open(io.BytesIO(fake.uploads[0]))
    assert sent.size == (side, side) and set(sent.getdata()) <= {0, 255}


def test_a_broken_upload_answer_fails_the_attempt(fake: FakeReplicate, make_config: Any) -> None:
    fake.script(Reply(201, {"id": "x", "urls": {"get": "file:///etc/passwd"}}), key="files")
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(
            gw,
            EDITS,
            data={
                "model": KONTEXT,
                "prompt": "paint it",
                "size": "256x256",
                "orq": '{"fallbacks": [{"model": "placeholder/x"}]}',
            },
            files={"image": ("in.png", noise_png(640), "image/png")},
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/x"
    assert fake.creates() == []  # nothing was created with the bad URL
