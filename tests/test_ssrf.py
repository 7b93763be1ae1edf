"""The fetch guard, "every image answered is an image" and capped upstream bodies.

Everything runs over real sockets on 127.0.0.1: the gateway, a hostile provider, an internal
service the gateway must never reach and a raw server that floods 300 MB. Only the address
classification and one resolver unit use stubs.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.bfl import FakeBFL
from fakes.core import Reply
from fakes.fal import FakeFal
from fakes.flood import Flood, Mode
from fakes.hostile import OWN_IMAGE, SECRET, HostileProvider, Internal
from fakes.replicate import FakeReplicate
from imagekit import solid
from live import GEN, LiveGateway, live_gateway, post

from imagegate.blobs.fetch import REFUSED, FetchError, ImageFetcher
from imagegate.config import ProviderConfig
from imagegate.imageinfo import probe, probe_b64
from imagegate.net import GuardedResolver, RefusedAddress, category, origin_of, refusal
from imagegate.providers.core.http import HTTPProvider
from imagegate.providers.core.runner import SpecProvider
from imagegate.providers.queue import bfl
from imagegate.providers.registry import Registry

# --- address classification (unit) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("93.184.216.34", None),
        ("::ffff:93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("8.8.8.8", None),
    ],
)
def test_address_classification(address: str, expected: str | None) -> None:
    ip = ipaddress.ip_address(address)
    assert category(ip) == expected
    assert (refusal(ip, allow_private=False) is None) == (expected is None)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("fc00::1", True),
        ("100.64.0.1", True),
        ("169.254.169.254", False),  # the metadata endpoint stays shut
        ("fe80::1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
    ],
)
def test_allow_private_opens_loopback_and_private_only(address: str, allowed: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert (refusal(ip, allow_private=True) is None) is allowed


async def test_resolver_returns_only_the_addresses_it_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:127.0.0.1", 443, 0, 0)),
    ]

    async def stub(*args: Any, **kwargs: Any) -> list[Any]:
        return answers

    monkeypatch.setattr(loop, "getaddrinfo", stub)
    found = await GuardedResolver(allow_private=False).resolve("cdn.example", 443, 0)
    assert [r["host"] for r in found] == ["93.184.216.34"]
    assert found[0]["hostname"] == "cdn.example"
    answers[:] = answers[:1]
    with pytest.raises(RefusedAddress):
        await GuardedResolver(allow_private=False).resolve("cdn.example", 443, 0)
    assert len(await GuardedResolver(allow_private=True).resolve("cdn.example", 443, 0)) == 1


async def test_resolver_refuses_a_name_for_loopback() -> None:
    with pytest.raises(RefusedAddress):
        await GuardedResolver(allow_private=False).resolve("localhost", 80, socket.AF_UNSPEC)


def test_origins() -> None:
    assert origin_of("https://API.Example.com/v1") == ("api.example.com", 443)
    assert origin_of("http://127.0.0.1:8080/x") == ("127.0.0.1", 8080)
    assert origin_of("http://[::1]/x") == ("::1", 80)
    assert origin_of("ftp://example.com/") is None
    assert origin_of("not a url") is None


# --- the fetcher over real sockets ------------------------------------------------------------


@pytest.fixture
def internal() -> Iterator[Internal]:
    with Internal() as server:
        yield server


class Connects:
    """Records every outbound connection attempt made on the running loop."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        loop = asyncio.get_running_loop()
        for name in ("sock_connect", "create_connection"):
            original = getattr(loop, name)
            monkeypatch.setattr(loop, name, self._counting(original))

    def _counting(self, original: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(*args, **kwargs)

        return wrapper


async def test_metadata_address_is_refused_before_any_connection(
    monkeypatch: pytest.MonkeyPatch, internal: Internal
) -> None:
    connects = Connects(monkeypatch)
    fetcher = ImageFetcher(max_bytes=1 << 20, timeout_s=30)
    try:
        for url in (
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/x",
            "http://[::ffff:169.254.169.254]/x",
            "http://0.0.0.0:80/",
            "http://2130706433/",  # 127.0.0.1 written as one number
            f"http://127.0.0.1:{internal.port}/secret",
            f"http://localhost:{internal.port}/secret",  # through the resolver
        ):
            with pytest.raises(FetchError) as caught:
                await fetcher.fetch(url)
            assert str(caught.value) == REFUSED, url
        assert connects.count == 0
        assert internal.hits == 0
        # The counter does see connections: the provider's own (trusted) host is fetched.
        trusted = frozenset({("127.0.0.1", internal.port)})
        data, _ = await fetcher.fetch(f"{internal.url}/image", trusted=trusted)
        assert data == SECRET and connects.count >= 1
    finally:
        await fetcher.close()


async def test_allow_private_fetches_loopback_by_name(internal: Internal) -> None:
    fetcher = ImageFetcher(max_bytes=1 << 20, timeout_s=30, allow_private=True)
    try:
        data, mime = await fetcher.fetch(f"http://localhost:{internal.port}/image")
    finally:
        await fetcher.close()
    assert data == SECRET and mime == "image/png"
    assert internal.hits == 1


# --- through the gateway ------------------------------------------------------------------


@pytest.fixture
def evil() -> Iterator[HostileProvider]:
    with HostileProvider() as server:
        yield server


def generate(gw: LiveGateway, model: str = "evil/m", **extra: Any) -> httpx.Response:
    body = {"model": model, "prompt": "p", "response_format": "b64_json", **extra}
    return post(gw, GEN, json=body)


def messages(response: httpx.Response) -> list[str]:
    error = response.json()["error"]
    return [error["message"]] + [f["message"] or "" for f in error.get("failures") or []]


def assert_refused_quietly(response: httpx.Response, *leaks: str) -> None:
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "provider_error"
    assert base64.b64encode(SECRET).decode() not in response.text
    for message in messages(response):
        for leak in ("127.0.0.1", "localhost", *leaks):
            assert leak not in message, message


def test_url_on_another_loopback_port_is_refused(
    evil: HostileProvider, internal: Internal, make_config: Any
) -> None:
    evil.data = [{"url": f"{internal.url}/secret"}]
    with live_gateway(make_config(providers=evil.providers())) as gw:
        r = generate(gw)
        as_url = generate(gw, response_format="url")
    assert_refused_quietly(r, str(internal.port))
    assert_refused_quietly(as_url, str(internal.port))
    assert "not a public address" in r.json()["error"]["message"]
    assert internal.hits == 0


def test_metadata_url_is_refused(evil: HostileProvider, make_config: Any) -> None:
    evil.data = [{"url": "http://169.254.169.254/latest/meta-data/iam/security-credentials/"}]
    with live_gateway(make_config(providers=evil.providers())) as gw:
        r = generate(gw)
    assert_refused_quietly(r, "169.254", "security-credentials")
    assert "not a public address" in r.json()["error"]["message"]


def test_redirect_from_the_trusted_host_is_checked_again(
    evil: HostileProvider, internal: Internal, make_config: Any
) -> None:
    evil.data = [{"url": f"{evil.url}/own/redirect"}]
    evil.location = f"{internal.url}/secret"
    with live_gateway(make_config(providers=evil.providers())) as gw:
        refused = generate(gw)
        evil.location = "/own/image"  # a relative redirect on the provider's own host is fine
        served = generate(gw)
    assert_refused_quietly(refused, str(internal.port))
    assert internal.hits == 0
    assert served.status_code == 200, served.text
    assert base64.b64decode(served.json()["data"][0]["b64_json"]) == OWN_IMAGE


def test_allow_private_lets_the_other_port_through(
    evil: HostileProvider, internal: Internal, make_config: Any
) -> None:
    evil.data = [{"url": f"{internal.url}/secret"}]
    config = make_config(providers=evil.providers(), fetch={"allow_private": True})
    with live_gateway(config) as gw:
        r = generate(gw)
    assert r.status_code == 200, r.text
    assert base64.b64decode(r.json()["data"][0]["b64_json"]) == SECRET
    assert internal.hits == 1


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming ``width`` x ``height`` (no pixel data follows)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + ihdr)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", crc)


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"url": "{evil}/own/notimage"}, "not a png, jpeg or webp"),
        ({"b64_json": base64.b64encode(b"<html>hello</html>" * 20).decode()}, "not a png"),
        ({"url": "data:image/png;base64," + base64.b64encode(b"GIF89a....").decode()}, "not a"),
        ({"b64_json": base64.b64encode(png_header(13000, 13000)).decode()}, "13000x13000"),
        ({"url": "{evil}/own/missing"}, "could not be fetched"),
    ],
)
def test_answers_that_are_not_images_are_502(
    evil: HostileProvider, make_config: Any, item: dict[str, str], fragment: str
) -> None:
    evil.data = [{k: v.replace("{evil}", evil.url) for k, v in item.items()}]
    with live_gateway(make_config(providers=evil.providers())) as gw:
        r = generate(gw, orq={"retry": {"count": 1, "on_codes": [502]}})
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "provider_error"
    assert fragment in r.json()["error"]["message"]
    assert evil.calls == 2  # a failure of the attempt: retried like any broken answer


def test_a_non_image_falls_back_to_the_next_model(evil: HostileProvider, make_config: Any) -> None:
    evil.data = [{"b64_json": base64.b64encode(b"not an image at all").decode()}]
    with live_gateway(make_config(providers=evil.providers())) as gw:
        r = generate(gw, orq={"fallbacks": [{"model": "placeholder/fox"}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-model"] == "placeholder/fox"
    assert probe(base64.b64decode(r.json()["data"][0]["b64_json"])) is not None


@pytest.mark.parametrize(
    ("mode", "cap"),
    [
        ("chunked", 1 << 20),
        ("declared", 1 << 20),
        ("lying", 1 << 20),
        ("chunked", None),
    ],
)
def test_huge_upstream_bodies_are_cut_off(make_config: Any, mode: Mode, cap: int | None) -> None:
    limits = {} if cap is None else {"max_provider_response_bytes": cap}
    with Flood(mode) as flood:
        with live_gateway(make_config(providers=flood.providers(), limits=limits)) as gw:
            r = generate(gw, model="flood/m")
        assert r.status_code == 502, r.text[:500]
        assert r.json()["error"]["code"] == "provider_error"
        assert flood.requests == 1
        assert not flood.finished
        assert flood.sent < 96 * 1024 * 1024  # the cap plus socket buffers, never 300 MB
    if mode != "lying":
        assert "response over" in r.json()["error"]["message"]


# --- polling URLs carry the provider's key: only to its own host ----------------------------


def test_bfl_polling_url_off_host_is_not_followed(internal: Internal, make_config: Any) -> None:
    with FakeBFL() as fake:
        fake.script(Reply(200, {"id": "t1", "polling_url": f"{internal.url}/v1/get_result"}))
        with live_gateway(make_config(providers=fake.providers())) as gw:
            r = generate(gw, model="bfl/flux-pro-1.1")
    assert r.status_code == 502, r.text
    assert "polling_url is not on the provider's host" in r.json()["error"]["message"]
    assert internal.hits == 0


def test_replicate_urls_off_host_are_not_followed(internal: Internal, make_config: Any) -> None:
    with FakeReplicate() as fake:
        prediction = {
            "id": "p1",
            "status": "starting",
            "urls": {"get": f"{internal.url}/p1", "cancel": f"{internal.url}/p1/cancel"},
        }
        fake.script(Reply(201, prediction))
        with live_gateway(make_config(providers=fake.providers())) as gw:
            r = generate(gw, model="replicate/black-forest-labs/flux-dev")
    assert r.status_code == 502, r.text
    assert internal.hits == 0


def test_fal_queue_urls_off_host_are_not_followed(internal: Internal, make_config: Any) -> None:
    with FakeFal() as fake:
        ticket = {
            "request_id": "r1",
            "status_url": f"{internal.url}/status",
            "response_url": f"{internal.url}/r1",
            "cancel_url": f"{internal.url}/cancel",
        }
        fake.script(Reply(200, ticket))
        with live_gateway(make_config(providers=fake.providers())) as gw:
            r = generate(gw, model="fal/fal-ai/flux/dev")
    assert r.status_code == 502, r.text
    assert internal.hits == 0


def test_bfl_regional_hosts_are_its_own_only_with_the_vendor_base_url() -> None:
    vendor = SpecProvider(bfl.SPEC, "bfl", ProviderConfig(api_key="k"))
    assert vendor.own_url("https://api.eu1.bfl.ai/v1/get_result?id=1", "polling_url")
    assert vendor.own_url("https://api.bfl.ai/v1/get_result?id=1", "polling_url")
    for url in (
        "http://api.eu1.bfl.ai/v1/get_result",  # not https
        "https://api.eu1.bfl.ai:8443/v1/get_result",
        "https://bfl.ai.evil.example/v1/get_result",
        "https://127.0.0.1/v1/get_result",
    ):
        with pytest.raises(Exception, match="not on the provider's host"):
            vendor.own_url(url, "polling_url")
    proxied = SpecProvider(
        bfl.SPEC, "bfl", ProviderConfig(api_key="k", base_url="http://10.0.0.7:8000")
    )
    assert proxied.own_url("http://10.0.0.7:8000/v1/get_result", "polling_url")
    with pytest.raises(Exception, match="not on the provider's host"):
        proxied.own_url("https://api.eu1.bfl.ai/v1/get_result", "polling_url")


def test_registry_applies_the_response_cap(make_config: Any) -> None:
    config = make_config(
        providers={"openai": {"api_key": "k"}}, limits={"max_provider_response_bytes": 4096}
    )
    provider = Registry(config).get("openai")
    assert isinstance(provider, HTTPProvider)
    assert provider.max_response_bytes == 4096


# --- the header probe ---------------------------------------------------------------------


def encoded(fmt: str, size: tuple[int, int], **kwargs: Any) -> bytes:
    return solid(size, (10, 20, 30), fmt=fmt, **kwargs)


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("JPEG", {"exif": b"Exif\x00\x00" + b"\x00" * 3000, "icc_profile": b"\x01" * 70000}),
        ("WEBP", {"lossless": True}),
        ("WEBP", {"quality": 70}),
        ("WEBP", {"exif": b"Exif\x00\x00abc"}),  # VP8X
    ],
)
@pytest.mark.parametrize("size", [(1, 1), (37, 91), (1536, 1024)])
def test_probe_reads_kind_and_size(fmt: str, kwargs: dict[str, Any], size: tuple[int, int]) -> None:
    data = encoded(fmt, size, **kwargs)
    kind = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}[fmt]
    for info in (
        probe(data),
        probe_b64(base64.b64encode(data).decode()),
        probe_b64(base64.encodebytes(data).decode()),  # wrapped lines: the slow, exact path
    ):
        assert info is not None
        assert (info.kind, info.width, info.height) == (kind, *size)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"\x89PNG\r\n\x1a\n",
        png_header(0, 10),
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"GIF89a" + b"\x00" * 30,
    ],
)
def test_probe_refuses_what_is_not_a_usable_image(data: bytes) -> None:
    assert probe(data) is None
    assert probe_b64(base64.b64encode(data).decode()) is None


def test_probe_b64_of_garbage_text() -> None:
    assert probe_b64("!!!! not base64 !!!!") is None
    assert probe_b64(base64.b64encode(png_header(13000, 13000)).decode()) is not None
