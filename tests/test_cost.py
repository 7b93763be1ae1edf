"""Per-image cost: the published price table, token pricing from usage, unknown → null."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fakes.openai import FakeOpenAI, Reply
from imagekit import png
from live import live_gateway

from imagegate.gateway import Gateway
from imagegate.pricing import PRICES_DIR, PriceBook
from imagegate.telemetry.trace import NullSink

BOOK = PriceBook.load()

# (model, size, quality, n) → USD, from OpenAI's published image prices.
TABLE: list[tuple[str, str | None, str | None, int, float | None]] = [
    ("openai/dall-e-2", "256x256", None, 1, 0.016),
    ("openai/dall-e-2", "512x512", None, 3, 0.054),
    ("openai/dall-e-2", "1024x1024", "standard", 2, 0.040),
    ("openai/dall-e-2", None, None, 1, 0.020),
    ("openai/dall-e-3", "1024x1024", "standard", 1, 0.040),
    ("openai/dall-e-3", "1024x1792", "standard", 1, 0.080),
    ("openai/dall-e-3", "1792x1024", None, 1, 0.080),
    ("openai/dall-e-3", "1024x1024", "hd", 1, 0.080),
    ("openai/dall-e-3", "1792x1024", "hd", 2, 0.240),
    ("openai/dall-e-3", None, None, 1, 0.040),
    ("openai/gpt-image-1", "1024x1024", "low", 1, 0.011),
    ("openai/gpt-image-1", "1536x1024", "low", 4, 0.064),
    ("openai/gpt-image-1", "1024x1536", "medium", 1, 0.063),
    ("openai/gpt-image-1", "1024x1024", "medium", 2, 0.084),
    ("openai/gpt-image-1", "1024x1024", "high", 1, 0.167),
    ("openai/gpt-image-1", "1536x1024", "high", 2, 0.500),
    ("openai/gpt-image-1", "1024x1024", "auto", 1, None),  # auto: unknown without usage
    ("openai/gpt-image-1", "512x512", "high", 1, None),  # no such size, no default
    ("placeholder/sketch", "64x64", None, 5, 0.0),
    ("openai/no-such-model", "1024x1024", None, 1, None),
    ("nobody/dall-e-3", "1024x1024", None, 1, None),
    ("dall-e-3", "1024x1024", None, 1, None),  # no provider prefix
]


@pytest.mark.parametrize(("model", "size", "quality", "n", "expected"), TABLE)
def test_price_table(
    model: str, size: str | None, quality: str | None, n: int, expected: float | None
) -> None:
    got = BOOK.cost(model, n=n, size=size, quality=quality)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-9)


def test_token_priced_model_uses_usage_then_falls_back() -> None:
    usage = {
        "input_tokens": 1050,
        "output_tokens": 4160,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 1000},
    }
    expected = (50 * 5 + 1000 * 10 + 4160 * 40) / 1e6
    got = BOOK.cost("openai/gpt-image-1", n=1, size="1024x1024", quality="high", usage=usage)
    assert got == pytest.approx(expected)
    no_split = {"input_tokens": 100, "output_tokens": 1000}
    assert BOOK.cost("openai/gpt-image-1", n=1, usage=no_split) == pytest.approx(0.0405)
    partial = {"input_tokens": 100}  # no output count: per-image table instead
    got = BOOK.cost("openai/gpt-image-1", n=2, size="1024x1024", quality="low", usage=partial)
    assert got == pytest.approx(0.022)
    # usage on an image-priced model is ignored
    assert BOOK.cost("openai/dall-e-2", n=1, size="256x256", usage=usage) == 0.016


def test_cached_hit_costs_nothing_and_aliases_use_the_type() -> None:
    assert BOOK.cost("openai/dall-e-3", n=1, cached=True) == 0.0
    assert BOOK.cost("openai/unknown", n=1, cached=True) == 0.0
    assert BOOK.cost("eu/dall-e-3", n=1, size="1024x1024") is None
    assert BOOK.cost("eu/dall-e-3", n=1, size="1024x1024", provider_type="openai") == 0.04


def test_price_files_have_the_fixed_format() -> None:
    files = sorted(PRICES_DIR.glob("*.json"))
    assert {"openai.json", "placeholder.json"} <= {f.name for f in files}
    for path in files:
        doc = orjson.loads(path.read_bytes())
        assert set(doc) >= {"source", "date", "currency", "models"}, path.name
        assert doc["currency"] == "USD"
        assert len(doc["date"]) == 10 and doc["date"][4] == "-", path.name
        for model in doc["models"].values():
            assert "per_image" in model or "tokens" in model
    openai = orjson.loads((PRICES_DIR / "openai.json").read_bytes())
    assert openai["source"].startswith("https://")


def test_broken_price_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(
        '{"source": "x", "date": "2026-01-01", "currency": "USD",'
        ' "models": {"m": {"per_image": {"default": {"default": 0.5}}}}}'
    )
    (tmp_path / "bad.json").write_text('{"models": 3}')
    book = PriceBook.load(tmp_path)
    assert set(book.files) == {"good"}
    assert book.cost("good/m", n=2) == 1.0


async def _trace_of(gw: Gateway) -> Any:
    await gw.output.drain()  # traces are submitted once background image writes finish
    sink = gw.traces
    assert isinstance(sink, NullSink)
    return sink.records[-1]


async def test_gateway_prices_served_images_from_the_provider_answer(make_config: Any) -> None:
    with FakeOpenAI() as fake:
        gw = Gateway(make_config(providers=fake.providers()), traces=NullSink())
        async with gw:
            await gw.generate(
                model="openai/dall-e-2", prompt="a", n=2, size="512x512", response_format="b64_json"
            )
            assert (await _trace_of(gw)).cost_usd == pytest.approx(0.036)
            await gw.generate(model="openai/gpt-image-1", prompt="b", n=2, quality="low")
            # the fake reports usage: 10 text tokens in, 40 tokens out
            assert (await _trace_of(gw)).cost_usd == pytest.approx((10 * 5 + 40 * 40) / 1e6)
            picture = base64.b64encode(png()).decode()
            fake.script(
                Reply(body={"created": 1, "data": [{"b64_json": picture}]}), key="gpt-image-1"
            )
            await gw.generate(
                model="openai/gpt-image-1", prompt="c", quality="medium", size="1024x1536"
            )
            assert (await _trace_of(gw)).cost_usd == pytest.approx(
                0.063
            )  # no usage: per-image table
            fake.script(
                Reply(body={"created": 1, "data": [{"b64_json": picture}]}), key="gpt-image-1"
            )
            await gw.generate(model="openai/gpt-image-1", prompt="d")
            assert (await _trace_of(gw)).cost_usd is None  # neither usage nor a known quality
        assert fake.violations == []


def test_failed_request_has_no_cost_over_http(make_config: Any) -> None:
    with FakeOpenAI() as fake:
        fake.script(Reply(400, body={"error": {"message": "bad prompt"}}))
        config = make_config(providers=fake.providers())
        with live_gateway(config) as gw:
            r = httpx.post(
                f"{gw.url}/v2/router/images/generations",
                json={"model": "openai/dall-e-3", "prompt": "x"},
            )
            assert r.status_code == 400
            trace = httpx.get(f"{gw.url}/v2/traces/{r.headers['x-orq-trace-id']}").json()
    assert trace["status"] == 400 and trace["cost_usd"] is None
