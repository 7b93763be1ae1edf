"""`imagegate.Gateway` in-process, no HTTP server (the library use)."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from fakes.openai import FakeOpenAI
from imagekit import png

import imagegate
from imagegate import Gateway, UploadedFile, load_config
from imagegate.errors import InvalidRequest, UnsupportedEngine


def _config(tmp_path: Path, yaml_text: str = "") -> imagegate.Config:
    path = tmp_path / "imagegate.yaml"
    path.write_text(yaml_text or "log_level: info\n")
    return load_config(
        path,
        env={},
        overrides={
            "data_dir": str(tmp_path / "data"),
            "storage": {"path": str(tmp_path / "blobs")},
        },
    )


def _upload(data: bytes, name: str = "in.png") -> UploadedFile:
    return UploadedFile.from_bytes(data, name)


def test_upload_from_bytes_sniffs_and_hashes() -> None:
    data = png(3)
    upload = UploadedFile.from_bytes(data, "cat")
    assert (upload.kind, upload.filename, upload.size) == ("png", "cat.png", len(data))
    assert upload.sha256 is None  # hashed only when something (the cache key) needs it
    assert upload.digest() == upload.sha256 == hashlib.sha256(data).hexdigest()
    with pytest.raises(imagegate.GatewayError) as err:
        UploadedFile.from_bytes(b"hello, not an image")
    assert err.value.code == "unsupported_file_mimetype"


def test_a_spooled_upload_is_hashed_from_its_file(tmp_path: Path) -> None:
    data = png(4) + os.urandom(300_000)
    path = tmp_path / "spooled.png"
    path.write_bytes(data)
    upload = UploadedFile("image", "a.png", "png", len(data), path=str(path))
    assert upload.digest() == hashlib.sha256(data).hexdigest()


async def test_generate_in_process(tmp_path: Path) -> None:
    async with Gateway(_config(tmp_path)) as gw:
        res = await gw.generate(
            model="placeholder/x", prompt="a fox", size="32x32", response_format="b64_json", n=2
        )
    assert len(res.data) == 2
    assert base64.b64decode(res.data[0]["b64_json"]).startswith(b"\x89PNG")
    assert res.model == "placeholder/x"
    assert res.headers()["x-orq-model"] == "placeholder/x"
    assert len(res.trace_id) == 26


async def test_edit_and_vary_in_process(tmp_path: Path) -> None:
    async with Gateway(_config(tmp_path)) as gw:
        edit = await gw.edit(
            images=[_upload(png(1))],
            model="placeholder/x",
            prompt="hat",
            size="32x32",
            response_format="b64_json",
        )
        vary = await gw.vary(
            image=_upload(png(2)), model="placeholder/x", size="256x256", response_format="b64_json"
        )
    assert base64.b64decode(edit.data[0]["b64_json"]).startswith(b"\x89PNG")
    assert edit.body["size"] == "32x32"
    assert vary.body["size"] == "256x256"


async def test_library_with_openai_provider_and_orq_options(tmp_path: Path) -> None:
    with FakeOpenAI() as fake:
        yaml_text = (
            f"providers:\n  openai:\n    api_key: {fake.api_key}\n    base_url: {fake.url}/v1\n"
        )
        async with Gateway(_config(tmp_path, yaml_text)) as gw:
            res = await gw.generate(
                prompt="a red fox",
                model="openai/gpt-image-1",
                orq={"retry": {"count": 2, "on_codes": [429]}},
            )
        assert fake.violations == []
        assert fake.requests[0].json == {"model": "gpt-image-1", "prompt": "a red fox"}
    assert base64.b64decode(res.data[0]["b64_json"]) == png(0)
    assert res.body["usage"]["total_tokens"] == 30


async def test_library_errors_are_typed(tmp_path: Path) -> None:
    async with Gateway(_config(tmp_path)) as gw:
        with pytest.raises(InvalidRequest) as info:
            await gw.generate(model="placeholder/x", prompt="p", n=11)
        assert info.value.param == "n" and info.value.status == 400
        with pytest.raises(UnsupportedEngine):
            await gw.generate(model="nowhere/x", prompt="p")


def test_public_api_exports() -> None:
    for name in (
        "Gateway",
        "load_config",
        "CreateImageOrq",
        "CreateImageVariationOrq",
        "PostV2ProxyImagesGenerationsOrq",
        "CreateImageVariationRequestBody",
        "PublicIdentity",
        "GatewayError",
    ):
        assert hasattr(imagegate, name), name
