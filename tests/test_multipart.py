"""Streaming multipart: limits, temp-file hygiene, magic bytes, encodings the SDKs use."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from imagekit import encode, solid
from live import LiveGateway, live_gateway
from openai._qs import Querystring
from PIL import Image
from starlette.requests import ClientDisconnect
from waiting import wait_until

from imagegate.api.multipart import parse_multipart, put_bracketed
from imagegate.api.spool import SpoolBudget
from imagegate.config import LimitsConfig, UploadConfig, load_config
from imagegate.errors import InvalidRequest, PayloadTooLarge, ServiceUnavailable


def image_bytes(fmt: str = "PNG", side: int = 16, noise: int = 0) -> bytes:
    if noise:
        return encode(Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)), fmt)
    return solid(side, (10, 20, 30), fmt=fmt)


@pytest.fixture(scope="module")
def tmp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def gw(tmp_dir: Path) -> Iterator[LiveGateway]:
    data = tmp_dir.parent / (tmp_dir.name + "-data")
    uploads = {"max_file_bytes": 200_000, "spool_bytes": 16_384, "tmp_dir": str(tmp_dir)}
    overrides = {
        "data_dir": str(data),
        "storage": {"path": str(data / "blobs")},
        "uploads": uploads,
    }
    with live_gateway(load_config(env={}, overrides=overrides)) as server:
        yield server


def _edit(gw: LiveGateway, files: list[tuple[str, Any]], **data: Any) -> httpx.Response:
    form = {"model": "placeholder/x", "prompt": "p", "size": "16x16", **data}
    return httpx.post(f"{gw.url}/v2/router/images/edits", data=form, files=files, timeout=10)


def test_oversize_file_is_413_and_leaves_no_temp_file(gw: LiveGateway, tmp_dir: Path) -> None:
    big = image_bytes(side=320, noise=1)  # ~300 KB of incompressible PNG
    assert len(big) > 290_000
    r = _edit(gw, [("image", ("big.png", big, "image/png"))])
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"
    assert r.json()["error"]["param"] == "image"
    assert list(tmp_dir.iterdir()) == []


def test_spooled_upload_is_served_then_removed(gw: LiveGateway, tmp_dir: Path) -> None:
    """The body is streamed in two halves: after the first image (past ``spool_bytes``) the
    client waits until a temp file has appeared in ``tmp_dir``, then sends the rest."""
    mid = image_bytes(side=100, noise=1)  # ~30 KB: past spool_bytes, under the limit
    assert 16_384 < len(mid) < 200_000
    boundary = "sp00l"
    text = {"model": "placeholder/x", "prompt": "p", "size": "16x16"}
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in text.items()
    ).encode()
    # repeated ``image`` parts, as orq's docs curl sends several images
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{i}.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + mid
        + b"\r\n"
        for i in range(2)
    ]
    seen: list[str] = []

    def body() -> Iterator[bytes]:
        yield head + parts[0]
        seen.extend(wait_until(lambda: [p.name for p in tmp_dir.iterdir()], "a spool file"))
        yield parts[1] + f"--{boundary}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    r = httpx.post(f"{gw.url}/v2/router/images/edits", content=body(), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert [name.startswith("imagegate-") for name in seen] == [True]  # it was spooled
    assert len(r.json()["data"]) == 1
    assert list(tmp_dir.iterdir()) == []  # and is gone once the answer is out


def test_text_file_as_image_is_400_unsupported_mimetype(gw: LiveGateway, tmp_dir: Path) -> None:
    text = b"just some text, not a picture\n" * 1000
    r = _edit(gw, [("image", ("notes.png", text, "image/png"))])
    assert r.status_code == 400
    assert (r.json()["error"]["code"], r.json()["error"]["param"]) == (
        "unsupported_file_mimetype",
        "image",
    )
    assert list(tmp_dir.iterdir()) == []


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_image_kind_by_magic_bytes_not_by_name(gw: LiveGateway, fmt: str) -> None:
    data = image_bytes(fmt)
    r = _edit(gw, [("image", ("upload.bin", data, "application/octet-stream"))])
    assert r.status_code == 200, r.text


def test_json_parts_with_or_without_content_type(gw: LiveGateway) -> None:
    png = image_bytes()
    files = [
        ("image", ("a.png", png, "image/png")),
        ("orq", (None, b'{"retry": {"count": 9}}', "application/json")),
    ]
    r = _edit(gw, files)
    assert r.status_code == 400 and r.json()["error"]["param"] == "orq.retry.count"
    r = _edit(gw, [("image", ("a.png", png, "image/png"))], retry='{"count": 0}')
    assert r.status_code == 400 and r.json()["error"]["param"] == "retry.count"
    r = _edit(gw, [("image", ("a.png", png, "image/png"))], orq="{not json")
    assert r.status_code == 400 and r.json()["error"]["param"] == "orq"


def test_seventeen_images_is_400(gw: LiveGateway) -> None:
    png = image_bytes()
    r = _edit(gw, [("image[]", (f"{i}.png", png, "image/png")) for i in range(17)])
    assert r.status_code == 400 and r.json()["error"]["param"] == "image[]"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n"),  # no boundary parameter
        ("multipart/form-data; boundary=abc", b"garbage without any boundary"),
        (
            "multipart/form-data; boundary=abc",
            b'--abc\r\nContent-Disposition: form-data; name="model"\r\n\r\nplaceholder/x',
        ),
        ("multipart/form-data; boundary=abc", b"--abc\r\nno headers at all\r\n\r\n--abc--"),
        ("application/x-www-form-urlencoded", b"model=placeholder/x&prompt=p"),
        ("application/json", b'{"model": "placeholder/x", "prompt": "p"}'),
    ],
)
def test_malformed_multipart_is_400(gw: LiveGateway, content_type: str, body: bytes) -> None:
    r = httpx.post(
        f"{gw.url}/v2/router/images/edits", content=body, headers={"content-type": content_type}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request_body"


def test_bracket_names_decode_what_openai_sdk_encodes() -> None:
    """Round trip through the openai SDK's own multipart flattening."""
    value = {
        "orq": {
            "retry": {"count": 2, "on_codes": [429, 500]},
            "fallbacks": [{"model": "a/b"}, {"model": "c/d"}],
            "load_balancer": {
                "type": "weight_based",
                "models": [{"model": "a/b", "weight": 0.4}, {"model": "c/d"}],
            },
            "identity": {"id": "u", "tags": ["x", "y"], "metadata": {"plan": "pro"}},
        },
        "fallback_on_codes": [500, 502],
        "timeout": {"call_timeout": 5},
    }
    fields: dict[str, Any] = {}
    for key, text in Querystring(array_format="brackets").stringify_items(value):
        put_bracketed(fields, key, str(text))

    def as_text(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: as_text(x) for k, x in v.items()}
        if isinstance(v, list):
            return [as_text(x) for x in v]
        return str(v)

    assert fields == as_text(value)


@pytest.mark.parametrize("name", ["orq[", "[x]", "orq[a]b]", "a" + "[x]" * 9, "orq[a][b"])
def test_malformed_bracket_names(name: str) -> None:
    with pytest.raises(InvalidRequest):
        put_bracketed({}, name, "1")


def test_bracket_conflict_is_400() -> None:
    fields: dict[str, Any] = {"orq": "text"}
    with pytest.raises(InvalidRequest):
        put_bracketed(fields, "orq[retry][count]", "1")


def test_content_type_is_case_insensitive_and_boundary_keeps_case(gw: LiveGateway) -> None:
    png = image_bytes()
    boundary = b"AbCdEf0123"
    parts = [
        b'Content-Disposition: form-data; name="model"\r\n\r\nplaceholder/x',
        b'Content-Disposition: form-data; name="prompt"\r\n\r\np',
        b'Content-Disposition: form-data; name="size"\r\n\r\n16x16',
        b'Content-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png,
    ]
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    body += b"--" + boundary + b"--\r\n"
    headers = {"content-type": "Multipart/Form-Data; boundary=" + boundary.decode()}
    r = httpx.post(f"{gw.url}/v2/router/images/edits", content=body, headers=headers)
    assert r.status_code == 200, r.text


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 1 << 20])
async def test_parts_are_the_same_however_the_body_is_chunked(chunk_size: int) -> None:
    """File data reaches the collector as views of the received chunks: nothing is lost or
    shifted at chunk edges, whatever the chunking (CR/LF-heavy content included)."""
    image = image_bytes() + b"\r\n--x\r\r\n-" * 500 + bytes(range(256)) * 40
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na fox\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="orq"\r\n'
            'Content-Type: application/json\r\n\r\n{"retry": {"count": 2}}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    limits = UploadConfig(spool_bytes=5_000)  # the image goes to a temp file past 5 KB
    form = await parse_multipart(
        f"multipart/form-data; boundary={boundary}", _chunks(body, chunk_size), limits
    )
    try:
        assert form.fields == {"prompt": "a fox", "orq": {"retry": {"count": 2}}}
        [upload] = form.images
        assert upload.read_bytes() == image and upload.size == len(image)
        assert upload.path is not None  # spooled
    finally:
        for upload in form.images:
            upload.discard()


def _spooled_form(image: bytes, boundary: str = "b0undary") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )


def test_spool_budget_is_exact_on_success_and_holds_keep_the_file() -> None:
    budget = SpoolBudget(1 << 20)
    image = image_bytes() + b"\0" * 20_000
    body = _spooled_form(image)
    form = asyncio.run(
        parse_multipart(
            "multipart/form-data; boundary=b0undary",
            _chunks(body, 4096),
            UploadConfig(spool_bytes=1024),
            spool=budget,
        )
    )
    [upload] = form.images
    assert upload.path is not None and budget.held == len(image) == upload.spooled
    path = upload.path
    upload.hold()  # e.g. a coalesced cache flight
    upload.discard()
    upload.discard()  # the owner's discard is idempotent: it never drops someone's hold
    assert os.path.exists(path) and budget.held == len(image)
    upload.unhold()
    assert not os.path.exists(path) and budget.held == 0


async def _then_disconnect(body: bytes) -> AsyncIterator[bytes]:
    yield body
    raise ClientDisconnect()


@pytest.mark.parametrize("how", ["disconnect", "over-budget", "over-total"])
def test_spool_budget_is_exact_on_errors(tmp_path: Path, how: str) -> None:
    budget = SpoolBudget(30_000 if how == "over-budget" else 1 << 20)
    image = image_bytes() + b"\0" * 40_000
    body = _spooled_form(image)
    stream = _then_disconnect(body[:30_000]) if how == "disconnect" else _chunks(body, 4096)
    expected: type[Exception] = {
        "disconnect": ClientDisconnect,
        "over-budget": ServiceUnavailable,
        "over-total": PayloadTooLarge,
    }[how]
    limits = UploadConfig(spool_bytes=1024, tmp_dir=str(tmp_path))
    with pytest.raises(expected):
        asyncio.run(
            parse_multipart(
                "multipart/form-data; boundary=b0undary",
                stream,
                limits,
                LimitsConfig(max_multipart_bytes=35_000),
                spool=budget,
            )
        )
    assert budget.held == 0
    assert list(tmp_path.iterdir()) == []
