"""The canonical cache key, the memory backend, manifests and coalescing.

The rules: docs/images-and-cache.md, section "cache: {type: \"exact_match\", ttl}".
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from waiting import until

from imagegate.cache import InFlight, MemoryBackend, cache_key, manifest
from imagegate.options import build_request
from imagegate.output import Served, StoredImage
from imagegate.request import ImageRequest, UploadedFile


def upload(data: bytes, name: str = "a.png", field: str = "image") -> UploadedFile:
    return UploadedFile(
        field=field,
        filename=name,
        kind="png",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


BASE: dict[str, Any] = {
    "model": "openai/gpt-image-1",
    "prompt": "a red fox",
    "n": 1,
    "size": "1024x1024",
    "quality": "high",
    "background": "opaque",
    "output_format": "png",
    "output_compression": 80,
    "response_format": "url",
    "cache": {"type": "exact_match", "ttl": 60},
}


def edit(
    body: dict[str, Any] | None = None,
    images: list[UploadedFile] | None = None,
    mask: UploadedFile | None = None,
) -> ImageRequest:
    raw = {**BASE, **(body or {})}
    raw = {k: v for k, v in raw.items() if v is not None}
    files = images if images is not None else [upload(b"one"), upload(b"two")]
    return build_request("edits", raw, files, mask)


def gen(body: dict[str, Any]) -> ImageRequest:
    raw = {k: v for k, v in {**BASE, **body}.items() if v is not None}
    return build_request("generations", raw)


BASE_KEY = cache_key(edit(), "key_a")

CHANGES_KEY: dict[str, Callable[[], str]] = {
    "operation": lambda: cache_key(gen({}), "key_a"),
    "model": lambda: cache_key(edit({"model": "openai/gpt-image-1-mini"}), "key_a"),
    "load_balancer": lambda: cache_key(
        edit({"load_balancer": [{"model": "openai/gpt-image-1", "weight": 1}]}), "key_a"
    ),
    "prompt": lambda: cache_key(edit({"prompt": "a red fox."}), "key_a"),
    "prompt case": lambda: cache_key(edit({"prompt": "A red fox"}), "key_a"),
    "n": lambda: cache_key(edit({"n": 2}), "key_a"),
    "size": lambda: cache_key(edit({"size": "1536x1024"}), "key_a"),
    "quality": lambda: cache_key(edit({"quality": "low"}), "key_a"),
    "background": lambda: cache_key(edit({"background": "transparent"}), "key_a"),
    "output_format": lambda: cache_key(edit({"output_format": "webp"}), "key_a"),
    "output_compression": lambda: cache_key(edit({"output_compression": 81}), "key_a"),
    "seed": lambda: cache_key(edit({"seed": 7}), "key_a"),
    "image bytes": lambda: cache_key(edit(images=[upload(b"one"), upload(b"TWO")]), "key_a"),
    "image order": lambda: cache_key(edit(images=[upload(b"two"), upload(b"one")]), "key_a"),
    "image count": lambda: cache_key(edit(images=[upload(b"one")]), "key_a"),
    "mask": lambda: cache_key(edit(mask=upload(b"mask", field="mask")), "key_a"),
    "api key": lambda: cache_key(edit(), "key_b"),
    "no api key": lambda: cache_key(edit(), None),
}
KEEPS_KEY: dict[str, Callable[[], str]] = {
    "name": lambda: cache_key(edit({"name": "my-trace"}), "key_a"),
    "orq.name": lambda: cache_key(edit({"orq": {"name": "x"}}), "key_a"),
    "identity": lambda: cache_key(edit({"identity": {"id": "u1"}}), "key_a"),
    "contact": lambda: cache_key(edit({"contact": {"id": "u2"}}), "key_a"),
    "thread": lambda: cache_key(edit({"thread": {"id": "t1", "tags": ["x"]}}), "key_a"),
    "metadata": lambda: cache_key(edit({"metadata": {"k": "v"}}), "key_a"),
    "user": lambda: cache_key(edit({"user": "end-user-9"}), "key_a"),
    "retry": lambda: cache_key(edit({"retry": {"count": 2, "on_codes": [429]}}), "key_a"),
    "timeout": lambda: cache_key(edit({"timeout": {"call_timeout": 5000}}), "key_a"),
    "fallbacks": lambda: cache_key(edit({"fallbacks": [{"model": "openai/dall-e-2"}]}), "key_a"),
    "fallback_on_codes": lambda: cache_key(edit({"fallback_on_codes": [500]}), "key_a"),
    "cache.ttl": lambda: cache_key(edit({"cache": {"type": "exact_match", "ttl": 9}}), "key_a"),
    "response_format": lambda: cache_key(edit({"response_format": "b64_json"}), "key_a"),
    "filenames": lambda: cache_key(
        edit(images=[upload(b"one", "x.png"), upload(b"two", "y.png")]), "key_a"
    ),
}


@pytest.mark.parametrize("name", sorted(CHANGES_KEY))
def test_each_keyed_field_changes_the_key(name: str) -> None:
    key = CHANGES_KEY[name]()
    assert key != BASE_KEY
    assert len(key) == 64


@pytest.mark.parametrize("name", sorted(KEEPS_KEY))
def test_each_excluded_field_keeps_the_key(name: str) -> None:
    assert KEEPS_KEY[name]() == BASE_KEY


@pytest.mark.parametrize("field,value", [("style", "vivid"), ("moderation", "low")])
def test_generation_only_fields_change_the_key(field: str, value: str) -> None:
    base = cache_key(gen({}), "k")
    assert cache_key(gen({field: value}), "k") != base
    assert cache_key(gen({"user": "someone"}), "k") == base


def test_n_absent_means_one_and_load_balancer_is_a_set() -> None:
    assert cache_key(gen({"n": None}), "k") == cache_key(gen({"n": 1}), "k")
    lb1 = [{"model": "a/x", "weight": 0.2}, {"model": "b/y", "weight": 0.8}]
    lb2 = [{"model": "b/y", "weight": 0.5}, {"model": "a/x", "weight": 0.5}]
    one = cache_key(gen({"load_balancer": lb1}), "k")
    assert one == cache_key(gen({"load_balancer": lb2, "model": "other/m"}), "k")
    assert one != cache_key(gen({"load_balancer": lb1[:1]}), "k")


# --- memory backend --------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_memory_backend_expires_entries() -> None:
    clock = Clock()
    backend = MemoryBackend(1000, clock=clock)
    await backend.set("a", b"value", ttl_s=1)
    assert await backend.get("a") == b"value"
    clock.now += 1.01
    assert await backend.get("a") is None
    assert backend.size_bytes == 0


async def test_memory_backend_is_lru_bounded_by_bytes() -> None:
    backend = MemoryBackend(30)
    await backend.set("a", b"x" * 10, 60)
    await backend.set("b", b"x" * 10, 60)
    await backend.set("c", b"x" * 10, 60)
    assert await backend.get("a") is not None  # a is now the most recent
    await backend.set("d", b"x" * 10, 60)  # evicts b, the least recently used
    assert await backend.get("b") is None
    assert [await backend.get(k) is not None for k in "acd"] == [True, True, True]
    assert backend.size_bytes == 30
    await backend.set("huge", b"x" * 31, 60)  # bigger than the whole cache: not kept
    assert await backend.get("huge") is None
    assert len(backend) == 3


# --- manifests -------------------------------------------------------------------------------
def test_manifest_roundtrip_holds_keys_not_bytes() -> None:
    key = hashlib.sha256(b"img").hexdigest()
    served = Served(
        images=[StoredImage("url", key=key, data=b"img" * 1000, revised_prompt="r")],
        model="a/b",
        created=123,
        usage={"total_tokens": 3},
        extras={"size": "32x32"},
    )
    raw = manifest.encode(served)
    assert len(raw) < 400 and b"imgimg" not in raw
    back = manifest.decode(raw)
    assert back is not None
    assert (back.model, back.created, back.usage, back.extras) == (
        "a/b",
        123,
        {"total_tokens": 3},
        {"size": "32x32"},
    )
    assert [(i.key, i.source, i.revised_prompt, i.data) for i in back.images] == [
        (key, "url", "r", None)
    ]
    assert manifest.decode(b"not json") is None
    assert manifest.decode(raw.replace(key.encode(), b"../../etc")) is None


# --- coalescing ------------------------------------------------------------------------------
# Each test holds the work on an event until every caller has joined the flight (observed via
# ``InFlight.waiters()``), so "concurrent" is a fact of the test, not a matter of timing.


async def test_inflight_runs_once_for_concurrent_callers() -> None:
    flights: InFlight[int] = InFlight()
    release = asyncio.Event()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    callers = [asyncio.ensure_future(flights.run("k", work)) for _ in range(10)]
    await until(lambda: flights.waiters() == 10, "all ten callers waiting")
    release.set()
    results = await asyncio.gather(*callers)
    assert runs == 1
    assert [value for value, _ in results] == [42] * 10
    assert [leader for _, leader in results].count(True) == 1
    assert len(flights) == 0
    await flights.run("k", work)  # finished flights are forgotten
    assert runs == 2


async def test_inflight_survives_the_leader_leaving_and_stops_when_all_leave() -> None:
    flights: InFlight[str] = InFlight()
    started = asyncio.Event()
    release = asyncio.Event()
    cancelled = asyncio.Event()

    async def work() -> str:
        started.set()
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "done"

    leader = asyncio.ensure_future(flights.run("k", work))
    await started.wait()
    follower = asyncio.ensure_future(flights.run("k", work))
    await until(lambda: flights.waiters() == 2, "the follower joined")
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert flights.waiters() == 1 and len(flights) == 1  # the flight goes on for the follower
    release.set()
    assert await follower == ("done", False)
    assert not cancelled.is_set()

    started.clear()
    release.clear()
    only = asyncio.ensure_future(flights.run("k2", work))
    await started.wait()
    only.cancel()
    with pytest.raises(asyncio.CancelledError):
        await only
    await asyncio.wait_for(cancelled.wait(), 10)  # nobody left waiting: the work is cancelled
    assert len(flights) == 0


async def test_inflight_shares_failures() -> None:
    """One upstream call fails once and every caller gets that same failure; the next call
    after it starts afresh (failures are not remembered)."""
    flights: InFlight[int] = InFlight()
    release = asyncio.Event()
    runs = 0

    async def boom() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        raise RuntimeError(f"upstream down (run {runs})")

    callers = [asyncio.ensure_future(flights.run("k", boom)) for _ in range(3)]
    await until(lambda: flights.waiters() == 3, "all three callers waiting")
    release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert runs == 1
    assert all(isinstance(r, RuntimeError) for r in results), results
    assert len({id(r) for r in results}) == 1  # the very same exception, raised once
    assert str(results[0]) == "upstream down (run 1)"
    assert len(flights) == 0
    with pytest.raises(RuntimeError, match=r"run 2"):
        await flights.run("k", boom)


def test_a_malformed_redis_url_is_a_config_error() -> None:
    from imagegate.cache import make_backend
    from imagegate.config import CacheConfig, ConfigError

    with pytest.raises(ConfigError, match=r"cache\.redis_url"):
        make_backend(CacheConfig(backend="redis", redis_url="http://not-redis:1/"))
