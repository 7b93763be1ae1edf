"""A dead Redis never fails a request: it is served uncached, a counter rises and a warning is
logged at most once a minute (without the URL's password). See docs/images-and-cache.md.

How fast an uncached answer comes is for bench/; here the client's timeout only guards
against a request that hangs on Redis.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from fakes.urlserver import ImageServer
from live import free_port, live_gateway
from waiting import wait_until

from imagegate.cache import RedisBackend

MODEL = "urlprov/dall-e-2"


def gen(url: str) -> httpx.Response:
    payload = {
        "model": MODEL,
        "prompt": "fox",
        "response_format": "url",
        "cache": {"type": "exact_match", "ttl": 60},
    }
    return httpx.post(f"{url}/v2/router/images/generations", json=payload, timeout=10)


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.2)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until(answers, "redis-server answers")
        yield proc, port
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


def redis_cache(port: int, **extra: Any) -> dict[str, Any]:
    return {"backend": "redis", "redis_url": f"redis://:hunter2@127.0.0.1:{port}/0", **extra}


def test_closed_port_serves_uncached_and_warns_once(
    make_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="imagegate.cache")
    with ImageServer("b64") as fake:
        config = make_config(
            providers=fake.providers(), cache=redis_cache(free_port(), retry_after_s=0)
        )
        with live_gateway(config) as gw:
            results = [gen(gw.url) for _ in range(3)]
            backend = gw.gateway.cache_layer.backend
            assert isinstance(backend, RedisBackend)
            errors, warnings = backend.errors, backend.warnings
    assert [r.status_code for r in results] == [200] * 3
    assert [r.headers["x-orq-cache"] for r in results] == ["MISS"] * 3
    assert fake.calls == 3  # nothing was cached
    assert errors >= 6  # every lookup and store failed, and was counted
    assert warnings == 1
    messages = [r.getMessage() for r in caplog.records if r.name == "imagegate.cache"]
    assert len(messages) == 1 and "unreachable" in messages[0]
    assert "hunter2" not in messages[0]


def test_redis_killed_mid_test(
    make_config: Any, own_redis: tuple[subprocess.Popen[bytes], int]
) -> None:
    proc, port = own_redis
    with ImageServer("url") as fake:
        cache = {"backend": "redis", "redis_url": f"redis://127.0.0.1:{port}/0"}
        config = make_config(providers=fake.providers(), cache=cache)
        with live_gateway(config) as gw:
            before = [gen(gw.url) for _ in range(2)]
            proc.kill()
            proc.wait(timeout=5)
            after = [gen(gw.url) for _ in range(2)]
            image = httpx.get(after[-1].json()["data"][0]["url"], timeout=10)
            backend = gw.gateway.cache_layer.backend
            assert isinstance(backend, RedisBackend)
            errors = backend.errors
    assert [r.headers["x-orq-cache"] for r in before] == ["MISS", "HIT"]
    assert [r.status_code for r in after] == [200, 200]
    assert [r.headers["x-orq-cache"] for r in after] == ["MISS", "MISS"]
    assert image.status_code == 200 and image.content == fake.image_bytes()[0]
    assert fake.calls == 3
    assert errors >= 1


async def test_backend_recovers_after_backoff(
    own_redis: tuple[subprocess.Popen[bytes], int],
) -> None:
    _, port = own_redis
    now = [0.0]
    backend = RedisBackend(
        f"redis://127.0.0.1:{free_port()}/0", prefix="t:", retry_after_s=5, clock=lambda: now[0]
    )
    assert await backend.get("k") is None
    assert backend.errors == 1 and not backend.available
    assert await backend.get("k") is None
    assert backend.errors == 1  # backing off: Redis not even tried
    now[0] += 5
    assert backend.available
    await backend.close()
    live = RedisBackend(f"redis://127.0.0.1:{port}/0", prefix=f"t{port}:")
    await live.set("k", b"v", 10)
    assert await live.get("k") == b"v"
    await live.delete("k")
    assert await live.get("k") is None
    assert live.errors == 0
    await live.close()
