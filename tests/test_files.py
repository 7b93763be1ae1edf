"""``GET /v2/files/{key}`` over HTTP: signed, expiring, typed and cacheable."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from live import live_gateway

from imagegate.blobs import blob_key


def image_url(gw_url: str, **body: object) -> str:
    payload = {
        "model": "placeholder/x",
        "prompt": "file",
        "size": "32x32",
        "response_format": "url",
        **body,
    }
    r = httpx.post(f"{gw_url}/v2/router/images/generations", json=payload, timeout=10)
    assert r.status_code == 200, r.text
    url: str = r.json()["data"][0]["url"]
    return url


def parts(url: str) -> tuple[str, str, str, str]:
    parsed = httpx.URL(url)
    base = f"{parsed.scheme}://{parsed.host}:{parsed.port}"
    return base, parsed.path.rsplit("/", 1)[1], parsed.params["expires"], parsed.params["sig"]


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_serves_bytes_with_type_and_cache_headers(make_config: Any, fmt: str) -> None:
    with live_gateway(make_config()) as gw:
        url = image_url(gw.url, output_format=fmt)
        r = httpx.get(url)
        assert r.status_code == 200
        assert r.headers["content-type"] == f"image/{fmt}"
        _, key, expires, _ = parts(url)
        assert blob_key(r.content) == key
        assert r.headers["etag"] == f'"{key}"'
        cache_control = r.headers["cache-control"]
        assert cache_control.startswith("private, max-age=") and "immutable" in cache_control
        max_age = int(cache_control.split("max-age=")[1].split(",")[0])
        assert 3590 <= max_age <= 3600
        assert abs(int(expires) - time.time() - max_age) <= 2
        again = httpx.get(url, headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        head = httpx.head(url)
        assert head.status_code == 200 and head.headers["content-type"] == f"image/{fmt}"


def test_bad_signatures_are_403(make_config: Any) -> None:
    with live_gateway(make_config()) as gw:
        url = image_url(gw.url)
        base, key, expires, sig = parts(url)
        other_key = blob_key(b"another image")
        cases = {
            "tampered sig": f"{base}/v2/files/{key}?expires={expires}&sig={sig[:-2]}00",
            "tampered expiry": f"{base}/v2/files/{key}?expires={int(expires) + 60}&sig={sig}",
            "expired": f"{base}/v2/files/{key}?expires={int(time.time()) - 1}"
            f"&sig={gw.gateway.output.signer.signature(key, int(time.time()) - 1)}",
            "wrong key": f"{base}/v2/files/{other_key}?expires={expires}&sig={sig}",
            "no signature": f"{base}/v2/files/{key}",
            "no expiry": f"{base}/v2/files/{key}?sig={sig}",
        }
        for name, bad in cases.items():
            r = httpx.get(bad)
            assert r.status_code == 403, name
            assert r.json()["error"]["code"] == "forbidden", name
        assert httpx.get(url).status_code == 200  # the genuine URL still works


def test_unknown_or_malformed_keys_are_404(make_config: Any) -> None:
    with live_gateway(make_config()) as gw:
        signer = gw.gateway.output.signer
        missing = blob_key(b"never stored")
        r = httpx.get(signer.url(gw.url, missing))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = httpx.get(f"{gw.url}/v2/files/..%2f..%2fetc%2fpasswd?expires=9999999999&sig=00")
        assert r.status_code == 404


def test_urls_survive_a_restart(make_config: Any) -> None:
    config = make_config()
    with live_gateway(config) as gw:
        url = image_url(gw.url)
    _, key, expires, sig = parts(url)
    with live_gateway(config) as gw2:
        r = httpx.get(f"{gw2.url}/v2/files/{key}?expires={expires}&sig={sig}")
    assert r.status_code == 200
    assert blob_key(r.content) == key


def test_malformed_query_params_are_400_without_a_traceback(
    make_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` raises: that was a 500 and a logged traceback."""
    key = blob_key(b"any image")
    with live_gateway(make_config(api_keys=["sk-gw"])) as gw:
        sig = gw.gateway.output.signer.signature(key, 9999999999)
        cases = {
            "expires=%C2%B2&sig=00": "expires",  # superscript two, no key sent
            "expires=%D9%A1%D9%A2&sig=00": "expires",  # Arabic-Indic digits
            f"expires={'9' * 5000}&sig={sig}": "expires",  # int() refuses over 4300 digits
            "expires=&sig=00": "expires",
            "expires=-1&sig=00": "expires",
            "expires=9999999999&sig=%C3%A9": "sig",  # compare_digest refuses non-ASCII
            "expires=9999999999&sig=zz": "sig",
            f"expires=9999999999&sig={sig}00": "sig",
        }
        for query, param in cases.items():
            r = httpx.get(f"{gw.url}/v2/files/{key}?{query}")
            assert r.status_code == 400, (query, r.text)
            assert r.json()["error"] == {
                "message": r.json()["error"]["message"],
                "type": "invalid_request_error",
                "param": param,
                "code": "invalid_request_body",
            }, query
        # a well-formed, correctly signed URL for a key never stored is still a 404
        assert httpx.get(f"{gw.url}/v2/files/{key}?expires=9999999999&sig={sig}").status_code == 404
        # a key with a trailing newline or in upper case names no file
        for bad_key in (f"{key}%0A", key.upper(), key[:-1], "%C2%B2" * 32):
            r = httpx.get(f"{gw.url}/v2/files/{bad_key}?expires=9999999999&sig={sig}")
            assert r.status_code == 404, bad_key
            assert r.json()["error"]["code"] == "not_found"
    assert not [rec for rec in caplog.records if rec.exc_info], "a traceback was logged"
