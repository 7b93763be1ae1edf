"""response_format is honoured whatever the provider returned, over real HTTP (the rule:
docs/images-and-cache.md, "`response_format` is always honoured").

Every conversion path: b64→url, b64→b64 (passed through untouched), url→url (re-hosted on the
gateway), url→b64, data: URIs, placeholder bytes, absent format, and across a fallback between
a URL-returning and a base64-returning provider.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.urlserver import ImageServer
from live import live_gateway
from waiting import wait_until

from imagegate.blobs import LocalBlobStore, direct
from imagegate.gateway import Gateway
from imagegate.output import Output
from imagegate.request import GeneratedImage, ImageResult
from imagegate.telemetry.trace import NullSink, TraceRecord

MODEL = "urlprov/dall-e-2"


def gen(url: str, model: str = MODEL, **body: Any) -> httpx.Response:
    payload = {"model": model, "prompt": "a red fox", **body}
    return httpx.post(f"{url}/v2/router/images/generations", json=payload, timeout=10)


def get_image(url: str) -> httpx.Response:
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200, r.text
    return r


def wait_trace(sink: NullSink, trace_id: str) -> TraceRecord:
    def found() -> TraceRecord | None:
        return next((r for r in sink.records if r.id == trace_id), None)

    return wait_until(found, f"trace {trace_id} submitted")


@pytest.mark.parametrize("mode", ["url", "b64", "data"])
@pytest.mark.parametrize("want", ["url", "b64_json"])
def test_every_provider_format_answered_as_asked(make_config: Any, mode: str, want: str) -> None:
    with ImageServer(mode) as fake, live_gateway(make_config(providers=fake.providers())) as gw:
        r = gen(gw.url, response_format=want)
        assert r.status_code == 200, r.text
        item = r.json()["data"][0]
        assert set(item) == {want, "revised_prompt"}
        assert item["revised_prompt"] == "revised: a red fox"
        expected = fake.image_bytes()[0]
        if want == "url":
            assert item["url"].startswith(
                f"{gw.url}/v2/files/{hashlib.sha256(expected).hexdigest()}?"
            )
            image = get_image(item["url"])
            assert image.content == expected
            assert image.headers["content-type"] == "image/png"
        else:
            assert base64.b64decode(item["b64_json"]) == expected
        assert fake.downloads == (1 if mode == "url" else 0)


def test_b64_passthrough_is_the_providers_string_and_is_stored_in_background(
    make_config: Any,
) -> None:
    sink = NullSink()
    with ImageServer("b64") as fake:
        config = make_config(providers=fake.providers())
        gateway = Gateway(config, traces=sink)
        with live_gateway(config, gateway) as gw:
            r = gen(gw.url, response_format="b64_json")
            assert r.status_code == 200, r.text
            assert r.json()["data"][0]["b64_json"] == fake.sent_b64[0]  # not re-encoded
            trace = wait_trace(sink, r.headers["x-orq-trace-id"])
    key = hashlib.sha256(base64.b64decode(fake.sent_b64[0])).hexdigest()
    assert trace.output_blobs == [key]
    stored = asyncio.run(LocalBlobStore(config.storage.path).get(key))  # file or pack row
    assert stored == base64.b64decode(fake.sent_b64[0])


@pytest.mark.parametrize("mode,expected", [("url", "url"), ("data", "url"), ("b64", "b64_json")])
def test_absent_format_keeps_the_providers_format_rehosted(
    make_config: Any, mode: str, expected: str
) -> None:
    with ImageServer(mode) as fake, live_gateway(make_config(providers=fake.providers())) as gw:
        r = gen(gw.url)
        assert r.status_code == 200, r.text
        item = r.json()["data"][0]
        assert expected in item
        if expected == "url":
            assert item["url"].startswith(f"{gw.url}/v2/files/")  # never the provider's URL
            assert get_image(item["url"]).content == fake.image_bytes()[0]


@pytest.mark.parametrize("want", ["url", "b64_json"])
def test_placeholder_bytes_answered_as_asked(make_config: Any, want: str) -> None:
    with live_gateway(make_config()) as gw:
        r = gen(gw.url, model="placeholder/sketch", size="32x32", response_format=want)
        assert r.status_code == 200, r.text
        item = r.json()["data"][0]
        raw = (
            get_image(item["url"]).content if want == "url" else base64.b64decode(item["b64_json"])
        )
        assert raw.startswith(b"\x89PNG")


def test_n_images_each_stored_under_its_own_key(make_config: Any) -> None:
    sink = NullSink()
    with ImageServer("url") as fake:
        config = make_config(providers=fake.providers())
        with live_gateway(config, Gateway(config, traces=sink)) as gw:
            r = gen(gw.url, n=3, response_format="url")
            assert r.status_code == 200, r.text
            urls = [item["url"] for item in r.json()["data"]]
            bodies = [get_image(u).content for u in urls]
            trace = wait_trace(sink, r.headers["x-orq-trace-id"])
    assert bodies == fake.image_bytes()
    assert len(set(bodies)) == 3
    assert trace.output_blobs == [hashlib.sha256(b).hexdigest() for b in bodies]


def test_traces_hold_blob_keys_never_base64(make_config: Any) -> None:
    sink = NullSink()
    with ImageServer("b64") as fake:
        config = make_config(providers=fake.providers())
        with live_gateway(config, Gateway(config, traces=sink)) as gw:
            r = gen(gw.url, response_format="url")
            assert r.status_code == 200, r.text
            trace = wait_trace(sink, r.headers["x-orq-trace-id"])
    assert trace.output_blobs == [hashlib.sha256(fake.image_bytes()[0]).hexdigest()]
    dumped = repr(trace)
    assert fake.sent_b64[0][:40] not in dumped
    assert "base64" not in dumped


@pytest.mark.parametrize(
    "server_kwargs,storage,fragment",
    [
        ({"mode": "url", "big_image_bytes": 4096}, {"fetch_max_bytes": 1024}, "cap"),
        ({"mode": "url", "img_delay_s": 0.6}, {"fetch_timeout_s": 0.2}, "timed out"),
        ({"mode": "ftp"}, {}, "ftp"),
    ],
)
def test_unfetchable_provider_url_is_a_502(
    make_config: Any,
    tmp_path: Path,
    server_kwargs: dict[str, Any],
    storage: dict[str, Any],
    fragment: str,
) -> None:
    with ImageServer(**server_kwargs) as fake:
        config = make_config(
            providers=fake.providers(), storage={"path": str(tmp_path / "b"), **storage}
        )
        with live_gateway(config) as gw:
            r = gen(gw.url, response_format="url")
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert err["code"] == "provider_error"
    assert fragment in err["message"]


@pytest.mark.parametrize("primary_mode,fallback_mode", [("url", "b64"), ("b64", "url")])
@pytest.mark.parametrize("want", ["url", "b64_json"])
def test_format_survives_a_fallback(
    make_config: Any, primary_mode: str, fallback_mode: str, want: str
) -> None:
    with (
        ImageServer(primary_mode, fail_status=503) as primary,
        ImageServer(fallback_mode) as backup,
    ):
        providers = {**primary.providers("first"), **backup.providers("second")}
        with live_gateway(make_config(providers=providers)) as gw:
            r = gen(
                gw.url,
                model="first/dall-e-2",
                response_format=want,
                orq={"fallbacks": [{"model": "second/dall-e-2"}]},
            )
            assert r.status_code == 200, r.text
            assert r.headers["x-orq-model"] == "second/dall-e-2"
            assert primary.calls == 1 and backup.calls == 1
            item = r.json()["data"][0]
            assert want in item
            expected = backup.image_bytes()[0]
            if want == "url":
                assert get_image(item["url"]).content == expected
            else:
                assert base64.b64decode(item["b64_json"]) == expected


def test_unfetchable_provider_url_is_an_attempt_failure_that_falls_back(
    make_config: Any,
) -> None:
    """The provider's image URL is downloaded inside the attempt: a bad URL falls back."""
    with ImageServer("ftp") as broken, ImageServer("b64") as backup:
        providers = {**broken.providers("first"), **backup.providers("second")}
        with live_gateway(make_config(providers=providers)) as gw:
            r = gen(
                gw.url,
                model="first/dall-e-2",
                response_format="b64_json",
                orq={"fallbacks": [{"model": "second/dall-e-2"}]},
            )
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "second/dall-e-2"
    assert broken.calls == 1 and backup.calls == 1
    assert base64.b64decode(r.json()["data"][0]["b64_json"]) == backup.image_bytes()[0]


async def test_library_urls_use_public_url(make_config: Any) -> None:
    config = make_config(public_url="https://images.example.test/")
    async with Gateway(config) as gw:
        res = await gw.generate(
            model="placeholder/x", prompt="p", size="32x32", response_format="url"
        )
    url = res.data[0]["url"]
    assert url.startswith("https://images.example.test/v2/files/")
    key = url.split("/v2/files/")[1].split("?")[0]
    assert gw.output.signer.verify(key, *_query(url))


def _query(url: str) -> tuple[str, str]:
    params = httpx.URL(url).params
    return params["expires"], params["sig"]


async def test_archive_copies_go_around_the_page_cache_and_url_blobs_do_not(
    make_config: Any,
) -> None:
    """b64 answers are archived by the archive threads with O_DIRECT (when the filesystem
    can); an image answered as a URL is written normally, before the answer."""
    config = make_config()
    output = Output(config)
    store = output.store
    assert isinstance(store, LocalBlobStore)
    os.makedirs(config.storage.path, exist_ok=True)
    probe = direct.open_direct(os.path.join(config.storage.path, "probe"))
    if probe is not None:
        os.close(probe)
    big = b"\x89PNG\r\n\x1a\n" + os.urandom(400_000)
    text = base64.b64encode(big).decode()
    try:
        served = await output.prepare(
            ImageResult(images=[GeneratedImage(b64=text)]), "b64_json", model="m"
        )
        assert served.pending is not None and served.images[0].key is None  # not waited for
        await served.pending
        key = hashlib.sha256(big).hexdigest()
        assert served.blob_keys() == [key] and await store.get(key) == big
        assert store.direct_writes == (1 if probe is not None else 0)

        other = b"\x89PNG\r\n\x1a\n" + os.urandom(400_000)
        url_served = await output.prepare(
            ImageResult(images=[GeneratedImage(b64=base64.b64encode(other).decode())]),
            "url",
            model="m",
        )
        assert url_served.pending is None and url_served.images[0].stored  # written first
        assert store.direct_writes == (1 if probe is not None else 0)  # and not around the cache
        assert await store.get(hashlib.sha256(other).hexdigest()) == other
    finally:
        await output.close()


async def test_a_failed_archive_copy_loses_only_its_own_image(make_config: Any) -> None:
    output = Output(make_config())
    good = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
    try:
        served = await output.prepare(
            ImageResult(
                images=[
                    GeneratedImage(b64="not base64 at all!"),
                    GeneratedImage(b64=base64.b64encode(good).decode()),
                ]
            ),
            "b64_json",
            model="m",
        )
        assert served.pending is not None
        await served.pending
        assert served.blob_keys() == [hashlib.sha256(good).hexdigest()]
        assert await output.store.get(hashlib.sha256(good).hexdigest()) == good
        assert output.background_failures == 1
    finally:
        await output.close()
