"""The provider in docs/adding-a-provider.md, exactly as written there, serves requests.

The module is read from the page's first ```python block and run as a module, registered as a
provider type, and driven through the gateway over HTTP against a small fake Pixelpost server
that checks the (made-up) wire format: so the page cannot drift from what works.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fakes.client import answered_images
from fakes.core import Recorder, Reply
from imagekit import alpha_mask, image_of, png
from live import EDITS, GEN, live_gateway, post

from imagegate.providers import registry
from imagegate.providers.core.spec import Calls, Errors, Inputs, Models, ProviderSpec

DOC = Path(__file__).resolve().parent.parent / "docs" / "adding-a-provider.md"
FIELDS = {"model", "prompt", "count", "width", "height", "seed", "format", "image", "mask"}


def load_example() -> types.ModuleType:
    block = re.search(r"^```python\n(.*?)^```$", DOC.read_text(), re.MULTILINE | re.DOTALL)
    assert block is not None, "the page has no python block"
    code_lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(code_lines) < 100, "the example must stay under 100 lines"
    module = types.ModuleType("pixelpost")
    exec(compile(block.group(1), str(DOC), "exec"), module.__dict__)
    return module


PIXELPOST = load_example()


class FakePixelpost(Recorder):
    def __init__(self, key: str = "pk-test") -> None:
        super().__init__()
        self.key = key
        self.app.router.add_post("/v1/render", self._render)

    def providers(self) -> dict[str, Any]:
        return {"pixelpost": {"api_key": self.key, "base_url": self.url}}

    async def _render(self, request: web.Request) -> web.StreamResponse:
        received = await self.record(request)
        problems: list[str] = []
        if received.headers.get("X-Pixel-Key") != self.key:
            problems.append(f"X-Pixel-Key is {received.headers.get('X-Pixel-Key')!r}")
        doc = self.expect_json(received, problems)
        if set(doc) - FIELDS:
            problems.append(f"unknown fields {sorted(set(doc) - FIELDS)}")
        if not isinstance(doc.get("count"), int) or not 1 <= doc["count"] <= 2:
            problems.append(f"count {doc.get('count')!r} (1 or 2 per call)")
        for name in ("image", "mask"):
            if name in doc and image_of(base64.b64decode(doc[name])) is None:
                problems.append(f"{name} is not a base64 image")
        error = {"error": {"message": "; ".join(problems)}}
        return await self.respond(
            request, received, problems, lambda: _answer(doc), error_body=error
        )


def _answer(doc: dict[str, Any]) -> dict[str, Any]:
    pictures = [
        {"data": base64.b64encode(png(f"{doc.get('seed')}:{i}")).decode(), "mime": "image/png"}
        for i in range(doc["count"])
    ]
    return {"pictures": pictures, "credits_used": doc["count"]}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePixelpost]:
    monkeypatch.setattr(registry, "ADAPTERS", dict(registry.ADAPTERS))
    monkeypatch.setattr(registry, "PROVIDER_KEYS", dict(registry.PROVIDER_KEYS))
    registry.register(PIXELPOST.SPEC)
    with FakePixelpost() as server:
        yield server


def test_generation_is_batched_with_a_seed_per_call(fake: FakePixelpost, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        body = {"model": "pixelpost/pp-sketch", "prompt": "a fox", "n": 3, "size": "64x48"}
        r = post(gw, GEN, json={**body, "seed": 7, "response_format": "b64_json"})
    assert r.status_code == 200, r.text
    assert fake.violations == []
    assert len(answered_images(r)) == 3
    sent = sorted((s.json["count"], s.json["seed"]) for s in fake.requests)
    assert sent == [(1, 8), (2, 7)]  # n=3 as 2+1, each call with its own seed
    assert {(s.json["width"], s.json["height"]) for s in fake.requests} == {(64, 48)}


def test_edit_sends_base64_image_and_a_white_is_edit_mask(
    fake: FakePixelpost, make_config: Any
) -> None:
    mask = alpha_mask(16, clear=(0, 0, 8, 16))  # left half transparent: edit there
    files = [
        ("image", ("in.png", png(9), "image/png")),
        ("mask", ("mask.png", mask, "image/png")),
    ]
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, EDITS, data={"model": "pixelpost/pp-paint", "prompt": "a hat"}, files=files)
    assert r.status_code == 200, r.text
    assert fake.violations == []
    (seen,) = fake.requests
    sent_mask = image_of(base64.b64decode(seen.json["mask"]))
    assert sent_mask is not None
    assert (sent_mask.getpixel((2, 2)), sent_mask.getpixel((12, 2))) == (255, 0)


def test_what_the_runner_does_for_it(fake: FakePixelpost, make_config: Any) -> None:
    fake.script(Reply(422, {"error": {"message": "prompt blocked by the safety filter"}}))
    image = ("in.png", png(), "image/png")
    with live_gateway(make_config(providers=fake.providers())) as gw:
        refused = post(gw, GEN, json={"model": "pixelpost/pp-sketch", "prompt": "p"})
        not_sent = post(
            gw, EDITS, data={"model": "pixelpost/pp-sketch", "prompt": "p"}, files={"image": image}
        )
        unknown = post(gw, GEN, json={"model": "pixelpost/pp-other", "prompt": "p"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "content_policy_violation"
    for r in (not_sent, unknown):
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "unsupported_engine"
    assert len(fake.requests) == 1


def test_the_page_names_every_field_of_a_spec() -> None:
    """The page's table names each field of ``ProviderSpec`` and of its parts (as
    ``part.field``, or inside the part's ``Part(...)`` in the table): a field added to the
    spec without a word on the page fails here."""
    table = "\n".join(line for line in DOC.read_text().splitlines() if line.startswith("| "))
    missing = [f.name for f in dataclasses.fields(ProviderSpec) if f"`{f.name}" not in table]
    for part, kind in (
        ("calls", Calls),
        ("models", Models),
        ("inputs", Inputs),
        ("errors", Errors),
    ):
        shown = " ".join(re.findall(rf"`{kind.__name__}\(([^`]*)\)`", table))
        for f in dataclasses.fields(kind):
            if f"`{part}.{f.name}`" not in table and not re.search(rf"\b{f.name}\b", shown):
                missing.append(f"{part}.{f.name}")
    assert missing == []
