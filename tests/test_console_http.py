"""The console over plain HTTP (no browser): sessions, CSRF, headers, isolation, thumbnails.

The gateway runs in-process (uvicorn on a free port), once per database backend.
"""

from __future__ import annotations

import asyncio
import io
import re
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from databases import on_database
from imagekit import solid
from live import LiveGateway, live_gateway
from PIL import Image

from imagegate.blobs import blob_key, make_store
from imagegate.console.session import COOKIE, Session
from imagegate.store import TraceRecord, open_store
from imagegate.telemetry.trace import new_trace_id

ADMIN = "sk-console-http-admin"
CSP = re.compile(r"default-src 'self'.*script-src 'self'.*frame-ancestors 'none'")
GEN = "/v2/router/images/generations"


@pytest.fixture
def make_config(make_config: Any, database_url: str | None) -> Any:
    return on_database(make_config, database_url)


@pytest.fixture
def gw(make_config: Any) -> Iterator[LiveGateway]:
    with live_gateway(make_config(api_keys=[ADMIN])) as live:
        yield live


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(gw: LiveGateway, key: str) -> httpx.Client:
    client = httpx.Client(base_url=gw.url, timeout=15, follow_redirects=False)
    page = client.get("/console/sign-in")
    r = client.post(
        "/console/sign-in", data={"csrf": csrf_of(page.text), "key": key, "next": "/console/traces"}
    )
    assert r.status_code == 303, r.text
    return client


def new_key(gw: LiveGateway, workspace: str, role: str = "member") -> tuple[str, str]:
    r = httpx.post(
        f"{gw.url}/v2/admin/keys",
        headers={"authorization": f"Bearer {ADMIN}"},
        json={"workspace": workspace, "name": "t", "role": role},
    )
    assert r.status_code == 201, r.text
    return r.json()["key"], r.json()["id"]


def generate(gw: LiveGateway, key: str, **orq: Any) -> str:
    r = httpx.post(
        gw.url + GEN,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
        json={"model": "placeholder/sketch", "prompt": "a fox", "orq": orq},
    )
    assert r.status_code == 200, r.text
    return r.headers["x-orq-trace-id"]


def test_console_off_is_404_and_never_touched(make_config: Any) -> None:
    with live_gateway(make_config(api_keys=[ADMIN], console={"enabled": False})) as gw:
        for path in ("/console", "/console/", "/console/traces", "/console/sign-in"):
            r = httpx.get(gw.url + path)
            assert r.status_code == 404, path
            assert r.json()["error"]["code"] == "not_found"
        assert getattr(gw.app.state, "console", None) is None


def test_sign_in_cookie_flags_and_security_headers(gw: LiveGateway) -> None:
    client = httpx.Client(base_url=gw.url, timeout=15)
    page = client.get("/console/sign-in")
    assert page.status_code == 200
    assert CSP.search(page.headers["content-security-policy"])
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and " style=" not in page.text
    bad = client.post("/console/sign-in", data={"csrf": csrf_of(page.text), "key": "sk-wrong"})
    assert bad.status_code == 401 and "not valid" in bad.text
    page = client.get("/console/sign-in")
    r = client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(page.text), "key": ADMIN, "next": "//evil.example/x"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/traces"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(COOKIE + "="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert "secure" not in flags  # served over http here
    assert ADMIN not in cookie  # the key is never in the cookie
    assert client.get("/console/traces").status_code == 200


def test_cookie_is_secure_behind_https(make_config: Any) -> None:
    config = make_config(api_keys=[ADMIN], public_url="https://gw.example")
    with live_gateway(config) as gw:
        page = httpx.get(gw.url + "/console/sign-in")
        pre = page.headers["set-cookie"]  # Secure: an http client would not send it back
        assert "secure" in pre.lower()
        r = httpx.post(
            gw.url + "/console/sign-in",
            data={"csrf": csrf_of(page.text), "key": ADMIN},
            headers={"cookie": pre.split(";")[0]},
        )
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(COOKIE + "="))
        assert "secure" in cookie.lower()


def test_forms_without_a_valid_csrf_token_are_refused(gw: LiveGateway) -> None:
    client = sign_in(gw, ADMIN)
    token = csrf_of(client.get("/console/prompts").text)
    body = {"id": "p1", "template": "a {{input}}"}
    assert client.post("/console/prompts", data=body).status_code == 403
    assert (
        client.post("/console/prompts", data={**body, "csrf": token[:-2] + "xx"}).status_code == 403
    )
    cross = client.post(
        "/console/prompts", data={**body, "csrf": token}, headers={"origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    ok = client.post("/console/prompts", data={**body, "csrf": token})
    assert ok.status_code == 303 and ok.headers["location"] == "/console/prompts/p1"
    # another session's token is not this one's
    other = sign_in(gw, ADMIN)
    assert (
        other.post(
            "/console/prompts", data={"id": "p2", "template": "x", "csrf": token}
        ).status_code
        == 403
    )
    # the sign-in form: no token, or a token without its cookie
    fresh = httpx.Client(base_url=gw.url, timeout=15)
    assert fresh.post("/console/sign-in", data={"key": ADMIN}).status_code == 403
    page_token = csrf_of(fresh.get("/console/sign-in").text)
    stranger = httpx.Client(base_url=gw.url, timeout=15)
    assert (
        stranger.post("/console/sign-in", data={"key": ADMIN, "csrf": page_token}).status_code
        == 403
    )


def test_workspaces_do_not_see_each_other(gw: LiveGateway) -> None:
    key_a, _ = new_key(gw, "ws-a")
    key_b, _ = new_key(gw, "ws-b")
    trace_id = generate(gw, key_a, thread={"id": "t-a"}, identity={"id": "who-a"})
    r = httpx.post(
        f"{gw.url}/v2/prompts",
        headers={"authorization": f"Bearer {key_a}"},
        json={"id": "pa", "template": "x {{input}}"},
    )
    assert r.status_code == 201
    a, b = sign_in(gw, key_a), sign_in(gw, key_b)
    paths = [
        f"/console/traces/{trace_id}",
        f"/console/traces/{trace_id}/images/0",
        f"/console/traces/{trace_id}/images/0/thumb",
        "/console/threads/t-a",
        "/console/identities/who-a",
        "/console/prompts/pa",
    ]
    for path in paths:
        assert a.get(path).status_code == 200, path
        assert b.get(path).status_code == 404, path
    assert trace_id in a.get("/console/traces").text
    for path in (
        "/console/traces",
        "/console/threads",
        "/console/identities",
        "/console/prompts",
        "/console/traces?thread=t-a",
        "/console/usage",
    ):
        text = b.get(path).text
        assert trace_id not in text and "who-a" not in text and "t-a<" not in text, path
    token = csrf_of(b.get("/console/traces").text)  # a member may not switch workspace
    assert (
        b.post("/console/workspace", data={"csrf": token, "workspace": "ws-a"}).status_code == 403
    )
    admin = sign_in(gw, ADMIN)  # an admin may, and then sees ws-a's trace
    token = csrf_of(admin.get("/console/traces").text)
    assert trace_id not in admin.get("/console/traces").text
    r = admin.post("/console/workspace", data={"csrf": token, "workspace": "ws-a"})
    assert r.status_code == 303
    assert trace_id in admin.get("/console/traces").text


def test_revoked_key_and_forged_or_expired_sessions_end(gw: LiveGateway) -> None:
    key, key_id = new_key(gw, "ws-r")
    client = sign_in(gw, key)
    assert client.get("/console/traces").status_code == 200
    r = httpx.post(
        f"{gw.url}/v2/admin/keys/{key_id}/revoke", headers={"authorization": f"Bearer {ADMIN}"}
    )
    assert r.status_code == 200
    gone = client.get("/console/traces")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/console/sign-in")
    sessions = gw.app.state.console.sessions
    admin = sign_in(gw, ADMIN)
    value = admin.cookies[COOKIE]
    forged = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    for cookie in (
        forged,
        sessions.encode(Session("config", None, "default", time.time() - 1, "n")),
    ):
        c = httpx.Client(base_url=gw.url, cookies={COOKIE: cookie}, follow_redirects=False)
        assert c.get("/console/traces").status_code == 303


def test_dev_mode_opens_directly(make_config: Any) -> None:
    with live_gateway(make_config()) as gw:
        r = httpx.get(gw.url + "/console/traces", follow_redirects=False)
        assert r.status_code == 200
        assert any(c.startswith(COOKIE + "=") for c in r.headers.get_list("set-cookie"))


def _huge_png(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (its pixel data is a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _stored_trace(gw: LiveGateway, data: bytes) -> str:
    """A trace of workspace ``default`` whose one output image is ``data``, written through
    stores of our own on the gateway's database and blob directory."""
    key = blob_key(data)
    trace = TraceRecord(
        id=new_trace_id(),
        operation="generations",
        name="t",
        status=200,
        output_blobs=[key],
        prompt="stored",
    )

    async def put() -> None:
        blobs, store = make_store(gw.config.storage), open_store(gw.config)
        try:
            await blobs.put(key, data, "image/png")
            await store.write_batch([trace])
        finally:
            await blobs.close()
            await store.close()

    asyncio.run(put())
    return trace.id


def test_thumbnail_of_a_huge_header_is_refused_without_decoding(gw: LiveGateway) -> None:
    client = sign_in(gw, ADMIN)
    trace_id = _stored_trace(gw, _huge_png(100_000, 100_000))
    r = client.get(f"/console/traces/{trace_id}/images/0/thumb")
    assert r.status_code == 422
    assert "10,000,000,000 pixels" in r.text
    assert client.get(f"/console/traces/{trace_id}/images/0").status_code == 422
    assert gw.app.state.console.thumbs.made == 0
    not_image = _stored_trace(gw, b"<html>not an image</html>" * 4)
    assert client.get(f"/console/traces/{not_image}/images/0").status_code == 404
    assert client.get(f"/console/traces/{not_image}/images/0/thumb").status_code == 422


async def test_thumbnail_is_made_once_and_cached_long(gw: LiveGateway) -> None:
    trace_id = await asyncio.to_thread(generate, gw, ADMIN)
    client = await asyncio.to_thread(sign_in, gw, ADMIN)
    url = f"/console/traces/{trace_id}/images/0/thumb"
    async with httpx.AsyncClient(base_url=gw.url, cookies=client.cookies, timeout=30) as ac:
        answers = await asyncio.gather(*(ac.get(url) for _ in range(8)))
        assert {r.status_code for r in answers} == {200}
        assert len({r.content for r in answers}) == 1
        again = await ac.get(url)
    assert gw.app.state.console.thumbs.made == 1
    r = answers[0]
    assert r.headers["content-type"] == "image/webp"
    assert (
        "immutable" in r.headers["cache-control"]
        and "max-age=31536000" in r.headers["cache-control"]
    )
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.format == "WEBP" and max(img.size) == 256
    assert again.content == r.content
    etag = r.headers["etag"]
    async with httpx.AsyncClient(base_url=gw.url, cookies=client.cookies, timeout=30) as ac:
        assert (await ac.get(url, headers={"if-none-match": etag})).status_code == 304


def test_playground_runs_an_edit_with_an_upload(gw: LiveGateway) -> None:
    client = sign_in(gw, ADMIN)
    token = csrf_of(client.get("/console/playground").text)
    upload = solid((64, 48), (10, 200, 30))
    fields = {
        "csrf": token,
        "operation": "edits",
        "model": "placeholder/edit",
        "prompt": "make it blue",
        "retry_count": "1",
        "thread": "pg",
    }
    r = client.post(
        "/console/playground", data=fields, files={"image": ("in.png", upload, "image/png")}
    )
    assert r.status_code == 303, r.text
    trace_id = r.headers["location"].split("trace=")[1]
    page = client.get(f"/console/traces/{trace_id}")
    assert page.status_code == 200 and "edits" in page.text and "make it blue" in page.text
    assert client.get(f"/console/traces/{trace_id}/images/0").headers["content-type"] == "image/png"
    missing = dict(fields, csrf="")
    r = client.post(
        "/console/playground", data=missing, files={"image": ("in.png", upload, "image/png")}
    )
    assert r.status_code == 403
