"""``stream: true``: what the gateway refuses before any work, and the SSE reader's framing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from imagekit import png
from live import GEN, LiveGateway, live_gateway

from imagegate.config import load_config
from imagegate.providers.core.events import _boundary, _fields


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp = tmp_path_factory.mktemp("stream-input")
    config = load_config(
        env={},
        overrides={
            "data_dir": str(tmp),
            "storage": {"path": str(tmp / "blobs")},
        },
    )
    with live_gateway(config) as server:
        yield server


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"partial_images": 4}, "partial_images"),
        ({"partial_images": -1}, "partial_images"),
        ({"partial_images": 1.5}, "partial_images"),
        ({"partial_images": "two"}, "partial_images"),
        ({"stream": "sometimes"}, "stream"),
        ({"stream": 2}, "stream"),
        ({"response_format": "url"}, "response_format"),
    ],
)
def test_bad_stream_parameters_are_400(gw: LiveGateway, body: dict[str, Any], param: str) -> None:
    payload = {"model": "placeholder/sketch", "prompt": "x", "stream": True, **body}
    res = httpx.post(gw.url + GEN, json=payload, timeout=10)
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert (error["param"], error["code"]) == (param, "invalid_request_body")
    assert res.headers["x-orq-trace-id"]


def test_multipart_stream_text_is_a_boolean(gw: LiveGateway) -> None:
    """``stream=TRUE``/``false`` as multipart text (how SDKs encode form booleans)."""
    files = {"image": ("a.png", png(1), "image/png")}
    for text, events in (("TRUE", True), ("false", False)):
        data = {"model": "placeholder/sketch", "prompt": "x", "stream": text}
        res = httpx.post(gw.url + "/v2/router/images/edits", data=data, files=files, timeout=10)
        assert res.status_code == 200, res.text
        assert res.headers["content-type"].startswith(
            "text/event-stream" if events else "application/json"
        )


def test_event_framing_accepts_crlf_comments_and_multiline_data() -> None:
    block = bytearray(b': keep-alive\r\n\r\nevent: x\r\ndata: {"a":\r\ndata: 1}\r\n\r\n')
    first = _boundary(block, 0)
    assert first is not None and _fields(bytes(block[: first[0]])) is None  # a comment
    rest = block[first[0] + first[1] :]
    end = _boundary(rest, 0)
    assert end is not None
    assert _fields(bytes(rest[: end[0]])) == ("x", b'{"a":\n1}')
