"""Drive the gateway over HTTP like a client, and read its answers.

The steps every provider test repeats: generate or edit through the gateway, decode the
images it answered, read its error body, check that a request was refused before reaching
the fake upstream, or that a failure fell back to the next model::

    r = generate(gw.url, model="xai/grok-imagine-image", prompt="a fox")
    assert [img.format for img in answered_images(r)] == ["JPEG"]
    assert_unsent(edit(gw.url, [png()], model="xai/grok-2-image-1212", prompt="x"), fake, "model")
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fakes.core import Received, Recorder
from imagekit import image_of
from live import LiveGateway, live_gateway
from PIL import Image

GEN = "/v2/router/images/generations"
Fixture = Callable[..., Any]
FALLBACK = "placeholder/x"  # always served, never fails: where a fallback lands


def fixtures(
    make: Callable[[], Recorder], providers: Callable[[Any], dict[str, Any]] | None = None
) -> tuple[Fixture, Fixture]:
    """The ``fake`` and ``gw`` fixtures of a provider test module: a fresh fake from
    ``make()`` and a gateway configured with ``providers(fake)`` (default: the fake's own
    ``providers()``)::

        fake, gw = fixtures(FakeXAI)
    """

    @pytest.fixture
    def fake() -> Iterator[Recorder]:
        with make() as server:
            yield server

    @pytest.fixture
    def gw(fake: Any, make_config: Any) -> Iterator[LiveGateway]:
        entries = providers(fake) if providers is not None else fake.providers()
        with live_gateway(make_config(providers=entries)) as live:
            yield live

    return fake, gw


def generate(gateway_url: str, **body: Any) -> httpx.Response:
    """``POST /v2/router/images/generations`` with a JSON body."""
    return httpx.post(f"{gateway_url}{GEN}", json=body, timeout=30)


def edit(
    gateway_url: str,
    images: list[bytes],
    mask: bytes | None = None,
    operation: str = "edits",
    **fields: Any,
) -> httpx.Response:
    """``POST /v2/router/images/edits`` (or variations) as multipart, like the OpenAI SDK:
    one image as ``image``, several as ``image[]``."""
    name = "image[]" if len(images) > 1 else "image"
    files: list[tuple[str, tuple[str, bytes, str]]] = [
        (name, (f"in{i}.png", data, "image/png")) for i, data in enumerate(images)
    ]
    if mask is not None:
        files.append(("mask", ("mask.png", mask, "image/png")))
    data = {k: str(v) for k, v in fields.items()}
    return httpx.post(
        f"{gateway_url}/v2/router/images/{operation}", data=data, files=files, timeout=30
    )


def answered_images(response: httpx.Response) -> list[Image.Image]:
    """The images of a 200 answer, decoded, whichever form each item took (``b64_json``, a
    ``data:`` URI or a URL, fetched)."""
    assert response.status_code == 200, response.text
    images: list[Image.Image] = []
    for item in response.json()["data"]:
        if "b64_json" in item:
            raw = base64.b64decode(item["b64_json"])
        elif item["url"].startswith("data:"):
            raw = base64.b64decode(item["url"].partition(",")[2])
        else:
            raw = httpx.get(item["url"], timeout=10).content
        img = image_of(raw)
        assert img is not None, f"answer item is not an image: {str(item)[:80]}"
        images.append(img)
    return images


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an answer, checked to carry the four fields."""
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    error: dict[str, Any] = body["error"]
    return error


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The gateway answered ``status`` with error ``code``; the error object."""
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code, error
    return error


def assert_unsent(
    response: httpx.Response, fake: Recorder, param: str, code: str = "unsupported_engine"
) -> dict[str, Any]:
    """The gateway refused with 400 ``code`` naming ``param``, and ``fake`` saw nothing."""
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["code"], error["param"]) == (code, param), error
    assert fake.requests == [], [r.path for r in fake.requests]
    return error


def assert_fell_back(response: httpx.Response, fake: Recorder, calls: int = 1) -> None:
    """The answer came from ``FALLBACK`` after ``calls`` requests to ``fake``."""
    assert response.status_code == 200, response.text
    assert response.headers["x-orq-model"] == FALLBACK
    assert len(fake.requests) == calls, [r.path for r in fake.requests]


def with_fallback(**body: Any) -> dict[str, Any]:
    """``body`` with ``FALLBACK`` as its fallback model."""
    return {**body, "orq": {"fallbacks": [{"model": FALLBACK}]}}


def sent_values(fake: Recorder) -> list[dict[str, Any]]:
    """What each request carried (its JSON object or first text-field values), in order."""
    return [r.values for r in fake.requests]


def only(fake: Recorder) -> Received:
    """The one request ``fake`` received (AssertionError when it saw another count)."""
    assert len(fake.requests) == 1, [r.path for r in fake.requests]
    return fake.requests[0]
