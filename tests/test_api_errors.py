"""The error envelope: malformed input is a 400, unknown routes 404/405, never a 500."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.openai import FakeOpenAI, Reply
from live import GEN, LiveGateway, live_gateway

from imagegate.config import load_config


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp = tmp_path_factory.mktemp("errors")
    overrides = {"data_dir": str(tmp), "storage": {"path": str(tmp / "blobs")}}
    with live_gateway(load_config(env={}, overrides=overrides)) as server:
        yield server


def _assert_error(r: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = r.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and "Traceback" not in r.text
    assert len(r.headers["x-orq-trace-id"]) == 26
    return error


BAD = "invalid_request_body"  # a body the gateway's own checks refuse (docs/api.md, Errors)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", BAD),
        (b"{", BAD),
        (b'{"model": "placeholder/x", "prompt": "p",}', BAD),
        (b"null", BAD),
        (b"[1, 2]", BAD),
        (b'"text"', BAD),
        (b"\xff\xfe\x00", BAD),
        (b'{"model": "placeholder/x", "prompt": "p", "n": 1e400}', BAD),
        (b'{"model": "placeholder/x", "prompt": "p", "n": "NaN"}', BAD),
        (b'{"model": "placeholder/x", "prompt": "p", "n": true}', BAD),
        (b'{"model": "placeholder/x", "prompt": "p", "orq": [1]}', BAD),
        (b'{"model": "placeholder/x", "prompt": "p", "orq": {"retry": "3"}}', BAD),
        (b'{"model": "placeholder/x", "prompt": "p", "metadata": {"k": 1}}', BAD),
        (b'{"model": "placeholder/x", "prompt": "p", "size": "huge"}', BAD),
        (b'{"model": ["placeholder/x"], "prompt": "p"}', BAD),
        # ``model`` is only a routing target (a load balancer may replace it): a model no
        # candidate can serve is refused by routing, not by body validation
        (b'{"model": "nobody/x", "prompt": "p"}', "unsupported_engine"),  # no such provider
        (b'{"model": "no-provider-prefix", "prompt": "p"}', "unsupported_engine"),
        (b"[" * 10_000 + b"]" * 10_000, BAD),
    ],
)
def test_malformed_json_is_400(gw: LiveGateway, body: bytes, code: str) -> None:
    r = httpx.post(gw.url + GEN, content=body, headers={"content-type": "application/json"})
    error = _assert_error(r, 400, code)
    assert error["type"] == "invalid_request_error"
    if code == "unsupported_engine":
        assert error["param"] == "model"


def test_multipart_to_generations_is_400(gw: LiveGateway) -> None:
    r = httpx.post(gw.url + GEN, data={"model": "placeholder/x"}, files={"f": ("a", b"x")})
    _assert_error(r, 400, "invalid_request_body")


@pytest.mark.parametrize("path", [GEN, "/v1/images/edits", "/v2/proxy/images/variations"])
def test_get_on_image_route_is_405(gw: LiveGateway, path: str) -> None:
    _assert_error(httpx.get(gw.url + path), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("POST", "/v2/router/images/upscale"), ("GET", "/v9/x"), ("POST", "/health")],
)
def test_unknown_routes(gw: LiveGateway, method: str, path: str) -> None:
    r = httpx.request(method, gw.url + path)
    expected = (405, "method_not_allowed") if path == "/health" else (404, "not_found")
    _assert_error(r, *expected)


def test_health(gw: LiveGateway) -> None:
    r = httpx.get(gw.url + "/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert "placeholder" in r.json()["providers"]


def test_client_disconnect_cancels_quietly(
    make_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller that gives up mid-request costs no error and no 500 in the log."""
    caplog.set_level(logging.INFO, logger="imagegate")
    with FakeOpenAI() as fake, live_gateway(make_config(providers=fake.providers())) as gw:
        fake.script(Reply(delay_s=0.8))
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                gw.url + GEN, json={"model": "openai/gpt-image-1", "prompt": "p"}, timeout=0.3
            )
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and "client disconnected" not in caplog.text:
            time.sleep(0.02)
        assert "client disconnected" in caplog.text
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
        # the gateway still serves the next request normally
        r = httpx.post(gw.url + GEN, json={"model": "openai/gpt-image-1", "prompt": "p"})
        assert r.status_code == 200, r.text


def test_oversize_json_body_is_413(gw: LiveGateway) -> None:
    body = b'{"model": "placeholder/x", "prompt": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    r = httpx.post(gw.url + GEN, content=body, headers={"content-type": "application/json"})
    _assert_error(r, 413, "payload_too_large")
