"""The placeholder provider: offline, deterministic, png/jpeg/webp, all three operations."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.openai import fetch_image
from imagekit import png
from live import LiveGateway, live_gateway
from PIL import Image

from imagegate.config import load_config

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff", "webp": b"RIFF"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp = tmp_path_factory.mktemp("placeholder")
    overrides = {"data_dir": str(tmp), "storage": {"path": str(tmp / "blobs")}}
    with live_gateway(load_config(env={}, overrides=overrides)) as server:
        yield server


def _images(r: httpx.Response) -> list[bytes]:
    assert r.status_code == 200, r.text
    return [base64.b64decode(d["b64_json"]) for d in r.json()["data"]]


def _generate(gw: LiveGateway, **body: Any) -> list[bytes]:
    base = {
        "model": "placeholder/sketch",
        "prompt": "a fox",
        "size": "48x32",
        "response_format": "b64_json",
    }
    return _images(httpx.post(f"{gw.url}/v1/images/generations", json={**base, **body}))


def test_same_request_same_bytes(gw: LiveGateway) -> None:
    first = _generate(gw, n=3, seed=7)
    assert first == _generate(gw, n=3, seed=7)
    assert len(set(first)) == 3  # each image of n differs
    assert _generate(gw, n=1, seed=8)[0] != first[0]
    assert _generate(gw, n=1, prompt="a cat", seed=7)[0] != first[0]


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_formats_by_magic_bytes_and_size(gw: LiveGateway, fmt: str) -> None:
    [data] = _generate(gw, output_format=fmt)
    assert data.startswith(MAGIC[fmt])
    img = Image.open(io.BytesIO(data))
    assert img.size == (48, 32) and img.format == fmt.upper()


def test_compression_changes_jpeg(gw: LiveGateway) -> None:
    low = _generate(gw, output_format="jpeg", output_compression=5, size="128x128")[0]
    high = _generate(gw, output_format="jpeg", output_compression=95, size="128x128")[0]
    assert len(low) < len(high)


def test_url_is_a_usable_reference(gw: LiveGateway) -> None:
    body = {"model": "placeholder/x", "prompt": "p", "size": "32x32", "response_format": "url"}
    r = httpx.post(f"{gw.url}/v2/router/images/generations", json=body)
    assert r.status_code == 200, r.text
    assert fetch_image(r.json()["data"][0]["url"]).startswith(MAGIC["png"])


def test_edit_with_several_images_and_variation(gw: LiveGateway) -> None:
    files = [("image[]", (f"{i}.png", png(i, 24), "image/png")) for i in range(3)]
    files.append(("mask", ("m.png", png(9), "image/png")))
    data = {
        "model": "placeholder/x",
        "prompt": "hat",
        "n": "2",
        "size": "40x40",
        "response_format": "b64_json",
    }
    r = httpx.post(f"{gw.url}/v2/router/images/edits", data=data, files=files)
    edited = _images(r)
    assert len(edited) == 2 and Image.open(io.BytesIO(edited[0])).size == (40, 40)
    assert r.json()["size"] == "40x40" and r.json()["output_format"] == "png"
    var = {"model": "placeholder/x", "size": "256x256", "response_format": "b64_json"}
    r = httpx.post(
        f"{gw.url}/v2/router/images/variations",
        data=var,
        files={"image": ("a.png", png(1), "image/png")},
    )
    [varied] = _images(r)
    assert Image.open(io.BytesIO(varied)).size == (256, 256)
    # the input image shapes the output: a different input gives different bytes
    r2 = httpx.post(
        f"{gw.url}/v2/router/images/variations",
        data=var,
        files={"image": ("a.png", png(5), "image/png")},
    )
    assert _images(r2)[0] != varied


@pytest.mark.parametrize("size", ["big", "8x8", "4096x4096", "12x"])
def test_bad_size_is_400(gw: LiveGateway, size: str) -> None:
    body = {"model": "placeholder/x", "prompt": "p", "size": size}
    r = httpx.post(f"{gw.url}/v2/router/images/generations", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + b"garbage" * 10,
        png()[:60],
        b"\xff\xd8\xff" + b"\x00" * 50,
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    ],
)
def test_corrupt_image_with_valid_magic_is_400(gw: LiveGateway, data: bytes) -> None:
    r = httpx.post(
        f"{gw.url}/v2/router/images/edits",
        data={"model": "placeholder/x", "prompt": "p", "size": "16x16"},
        files={"image": ("a.png", data, "image/png")},
    )
    assert r.status_code == 400, r.text
    assert "not a decodable image" in r.json()["error"]["message"]
