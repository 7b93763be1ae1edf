"""The exact-match cache end to end over HTTP, against the real Redis on 127.0.0.1:6379
(and the memory backend), with a fake upstream that counts its calls."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fakes.urlserver import ImageServer
from imagekit import png
from live import live_gateway

from imagegate.blobs import blob_key
from imagegate.gateway import Gateway
from imagegate.telemetry.trace import NullSink

MODEL = "urlprov/dall-e-2"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"imagegate:test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
    finally:
        client.close()


def cache_config(backend: str, prefix: str) -> dict[str, Any]:
    return {"backend": backend, "redis_url": REDIS_URL, "prefix": prefix}


def gen(
    url: str, ttl: int = 60, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    payload = {
        "model": MODEL,
        "prompt": "a cached fox",
        "cache": {"type": "exact_match", "ttl": ttl},
        **body,
    }
    return httpx.post(
        f"{url}/v2/router/images/generations", json=payload, headers=headers, timeout=10
    )


def image_of(item: dict[str, Any]) -> bytes:
    if "b64_json" in item:
        return base64.b64decode(item["b64_json"])
    r = httpx.get(item["url"], timeout=10)
    assert r.status_code == 200
    return r.content


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_miss_then_hit(make_config: Any, redis_prefix: str, backend: str) -> None:
    sink = NullSink()
    with ImageServer("url") as fake:
        config = make_config(providers=fake.providers(), cache=cache_config(backend, redis_prefix))
        with live_gateway(config, Gateway(config, traces=sink)) as gw:
            first = gen(gw.url, response_format="url")
            asked_at = time.time()
            second = gen(gw.url, response_format="url")
            one, two = first.json(), second.json()
            images = [image_of(one["data"][0]), image_of(two["data"][0])]
    assert first.status_code == second.status_code == 200
    assert (first.headers["x-orq-cache"], second.headers["x-orq-cache"]) == ("MISS", "HIT")
    assert fake.calls == 1
    assert second.headers["x-orq-model"] == MODEL
    assert second.headers["x-orq-attempts"] == "0"
    assert one["created"] == two["created"]
    assert one["data"][0]["revised_prompt"] == two["data"][0]["revised_prompt"]
    url_one, url_two = one["data"][0]["url"], two["data"][0]["url"]
    assert url_one.split("?")[0] == url_two.split("?")[0]
    assert int(httpx.URL(url_two).params["expires"]) >= int(asked_at) + 3600  # signed afresh
    assert images == [fake.image_bytes()[0]] * 2
    traces = {t.id: t for t in sink.records}
    hit = traces[second.headers["x-orq-trace-id"]]
    miss = traces[first.headers["x-orq-trace-id"]]
    assert (miss.cache, hit.cache) == ("miss", "hit")
    assert hit.cost_usd == 0.0 and hit.served_model == MODEL
    assert hit.output_blobs == miss.output_blobs == [blob_key(fake.image_bytes()[0])]
    if backend == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=redis_prefix + "*"))
        assert len(keys) == 1
        value = client.get(keys[0])
        client.close()
        assert value is not None and len(value) < 1000  # a manifest, not the image


def test_ttl_expiry_in_redis(make_config: Any, redis_prefix: str) -> None:
    with ImageServer("b64") as fake:
        config = make_config(providers=fake.providers(), cache=cache_config("redis", redis_prefix))
        with live_gateway(config) as gw:
            assert gen(gw.url, ttl=1).headers["x-orq-cache"] == "MISS"
            assert gen(gw.url, ttl=1).headers["x-orq-cache"] == "HIT"
            client = redis.Redis.from_url(REDIS_URL)
            (key,) = list(client.scan_iter(match=redis_prefix + "*"))
            assert 0 < client.pttl(key) <= 1000
            deadline = time.monotonic() + 3
            while client.exists(key) and time.monotonic() < deadline:
                time.sleep(0.05)
            client.close()
            third = gen(gw.url, ttl=1)
    assert third.headers["x-orq-cache"] == "MISS"
    assert fake.calls == 2


@pytest.mark.parametrize("mode", ["url", "b64"])
@pytest.mark.parametrize("first_fmt,second_fmt", [("url", "b64_json"), ("b64_json", "url")])
def test_hit_answers_in_the_format_the_second_request_asks(
    make_config: Any, redis_prefix: str, mode: str, first_fmt: str, second_fmt: str
) -> None:
    with ImageServer(mode) as fake:
        config = make_config(providers=fake.providers(), cache=cache_config("redis", redis_prefix))
        with live_gateway(config) as gw:
            first = gen(gw.url, response_format=first_fmt)
            second = gen(gw.url, response_format=second_fmt)
            third = gen(gw.url)  # no format: the provider's, as on the miss
            items = [r.json()["data"][0] for r in (first, second, third)]
            images = [image_of(item) for item in items]
    assert [r.headers["x-orq-cache"] for r in (first, second, third)] == ["MISS", "HIT", "HIT"]
    assert first_fmt in items[0] and second_fmt in items[1]
    assert ("url" if mode == "url" else "b64_json") in items[2]
    assert images == [fake.image_bytes()[0]] * 3
    assert fake.calls == 1


def edit(url: str, image: bytes, **fields: str) -> httpx.Response:
    data = {
        "model": MODEL,
        "prompt": "same prompt",
        "response_format": "b64_json",
        "orq": '{"cache": {"type": "exact_match", "ttl": 60}}',
        **fields,
    }
    return httpx.post(
        f"{url}/v2/router/images/edits",
        data=data,
        files={"image": ("in.png", image, "image/png")},
        timeout=10,
    )


def test_edits_with_different_image_bytes_never_collide(
    make_config: Any, redis_prefix: str
) -> None:
    first_in, second_in = png("input-1"), png("input-2")
    with ImageServer("url") as fake:
        config = make_config(providers=fake.providers(), cache=cache_config("redis", redis_prefix))
        with live_gateway(config) as gw:
            a = edit(gw.url, first_in)
            b = edit(gw.url, second_in)
            a_again = edit(gw.url, first_in)
            b_again = edit(gw.url, second_in)
    assert [r.status_code for r in (a, b, a_again, b_again)] == [200] * 4
    assert [r.headers["x-orq-cache"] for r in (a, b, a_again, b_again)] == [
        "MISS",
        "MISS",
        "HIT",
        "HIT",
    ]
    assert fake.calls == 2
    assert [blob_key(f.data) for f in fake.requests[0].files] == [blob_key(first_in)]
    out = [base64.b64decode(r.json()["data"][0]["b64_json"]) for r in (a, b, a_again, b_again)]
    assert out[0] != out[1]
    assert out[0] == out[2] and out[1] == out[3]


def test_spooled_edits_are_keyed_by_their_bytes(make_config: Any, redis_prefix: str) -> None:
    """Uploads past ``spool_bytes`` live in temp files; the key hashes them from there."""
    first_in = png("big-1") + os.urandom(200_000)
    second_in = first_in[:-1] + bytes([first_in[-1] ^ 1])  # one bit differs, at the very end
    with ImageServer("url") as fake:
        config = make_config(
            providers=fake.providers(),
            cache=cache_config("redis", redis_prefix),
            uploads={"spool_bytes": 1024},
        )
        with live_gateway(config) as gw:
            statuses = [
                edit(gw.url, image).headers["x-orq-cache"]
                for image in (first_in, second_in, first_in, second_in)
            ]
    assert statuses == ["MISS", "MISS", "HIT", "HIT"]
    assert fake.calls == 2


async def test_concurrent_identical_requests_make_one_upstream_call(
    make_config: Any, redis_prefix: str
) -> None:
    with ImageServer("url", delay_s=0.3) as fake:
        config = make_config(providers=fake.providers(), cache=cache_config("redis", redis_prefix))
        with live_gateway(config) as gw:
            payload = {
                "model": MODEL,
                "prompt": "ten at once",
                "cache": {"type": "exact_match", "ttl": 60},
            }
            async with httpx.AsyncClient(timeout=10) as client:
                responses = await asyncio.gather(
                    *(
                        client.post(
                            f"{gw.url}/v2/router/images/generations",
                            json={**payload, "response_format": ("url", "b64_json")[i % 2]},
                        )
                        for i in range(10)
                    )
                )
                images = []
                for r in responses:
                    item = r.json()["data"][0]
                    if "url" in item:
                        images.append((await client.get(item["url"])).content)
                    else:
                        images.append(base64.b64decode(item["b64_json"]))
            layer = gw.gateway.cache_layer
            counts = (layer.misses, layer.coalesced)
    assert [r.status_code for r in responses] == [200] * 10
    assert fake.calls == 1
    assert sorted(r.headers["x-orq-cache"] for r in responses) == ["HIT"] * 9 + ["MISS"]
    assert images == [fake.image_bytes()[0]] * 10
    assert counts == (1, 9)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_errors_are_never_cached(make_config: Any, redis_prefix: str, backend: str) -> None:
    with ImageServer("url", fail_status=400) as fake:
        config = make_config(providers=fake.providers(), cache=cache_config(backend, redis_prefix))
        with live_gateway(config) as gw:
            codes = [gen(gw.url).status_code for _ in range(2)]
    assert codes == [400, 400]
    assert fake.calls == 2


def test_cache_is_scoped_by_workspace(make_config: Any, redis_prefix: str) -> None:
    """Keys of one workspace share its cache; a key of another workspace never sees it."""
    with ImageServer("b64") as fake:
        config = make_config(
            providers=fake.providers(),
            api_keys=["sk-one", "sk-two"],
            cache=cache_config("redis", redis_prefix),
        )
        with live_gateway(config) as gw:
            one = {"Authorization": "Bearer sk-one"}
            two = {"Authorization": "Bearer sk-two"}
            made = httpx.post(
                f"{gw.url}/v2/admin/keys",
                headers=one,
                timeout=10,
                json={"workspace": "team-b", "name": "b"},
            )
            assert made.status_code == 201, made.text
            other = {"Authorization": f"Bearer {made.json()['key']}"}
            seq = [
                gen(gw.url, headers=h).headers["x-orq-cache"] for h in (one, one, two, other, other)
            ]
    assert seq == ["MISS", "HIT", "HIT", "MISS", "HIT"]
    assert fake.calls == 2


def test_no_cache_header_unless_asked(make_config: Any) -> None:
    with ImageServer("b64") as fake, live_gateway(make_config(providers=fake.providers())) as gw:
        payload = {"model": MODEL, "prompt": "uncached"}
        r1 = httpx.post(f"{gw.url}/v2/router/images/generations", json=payload, timeout=10)
        r2 = httpx.post(f"{gw.url}/v2/router/images/generations", json=payload, timeout=10)
    assert r1.status_code == r2.status_code == 200
    assert "x-orq-cache" not in r1.headers and "x-orq-cache" not in r2.headers
    assert fake.calls == 2


def test_a_hit_whose_blob_vanished_is_served_upstream(
    make_config: Any, redis_prefix: str, tmp_path: Path
) -> None:
    with ImageServer("url") as fake:
        config = make_config(providers=fake.providers(), cache=cache_config("redis", redis_prefix))
        with live_gateway(config) as gw:
            assert gen(gw.url, response_format="url").headers["x-orq-cache"] == "MISS"
            key = blob_key(fake.image_bytes()[0])
            with sqlite3.connect(Path(config.storage.path) / "pack.db") as db:  # small: packed
                assert db.execute("DELETE FROM blobs WHERE key = ?", (key,)).rowcount == 1
            again = gen(gw.url, response_format="url")
            assert again.headers["x-orq-cache"] == "MISS"
            assert image_of(again.json()["data"][0]) == fake.image_bytes()[0]
            assert gen(gw.url, response_format="b64_json").headers["x-orq-cache"] == "HIT"
    assert fake.calls == 2
