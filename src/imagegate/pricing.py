"""Per-image cost from published price files, or ``None`` when it is not known.

One JSON file per provider prefix in ``imagegate/data/prices/<provider>.json``::

    {"source": "<price page URL>", "date": "YYYY-MM-DD", "currency": "USD",
     "models": {"<model id>": {
         "per_image": {"<quality | default>": {"<WxH | default>": <usd per image>}},
         "tokens": {"input_per_mtok": …, "image_input_per_mtok": …, "output_per_mtok": …}}}}

Lookup: the exact quality else ``default``, the exact size else ``default``; an unknown model
(or a missing table entry) costs ``None`` — never a made-up 0. A ``"*"`` model entry prices
every model of that provider (the local placeholder). Token-priced models use the provider's
``usage`` when given, else their per-image table. A cache hit costs 0.

    book = PriceBook.load()
    book.cost("openai/dall-e-3", n=2, size="1024x1792", quality="hd")   # 0.24
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("imagegate.pricing")
PRICES_DIR = Path(__file__).parent / "data" / "prices"
WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class TokenPrices:
    input_per_mtok: float
    image_input_per_mtok: float
    output_per_mtok: float

    def cost(self, usage: dict[str, Any]) -> float | None:
        """Cost of an OpenAI-style ``usage`` object; None when it lacks the counts."""
        output = _count(usage.get("output_tokens"))
        details = usage.get("input_tokens_details")
        if isinstance(details, dict) and (
            details.get("text_tokens") is not None or details.get("image_tokens") is not None
        ):
            text = _count(details.get("text_tokens") or 0)
            image = _count(details.get("image_tokens") or 0)
        else:  # no split given: count all input as text
            text, image = _count(usage.get("input_tokens")), 0.0
        if output is None or text is None or image is None:
            return None
        return (
            text * self.input_per_mtok
            + image * self.image_input_per_mtok
            + output * self.output_per_mtok
        ) / 1_000_000


def _count(value: Any) -> float | None:
    """A token count, or None when absent or not a non-negative number."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


@dataclass(frozen=True, slots=True)
class ModelPrice:
    per_image: dict[str, dict[str, float]]
    tokens: TokenPrices | None = None

    def image_price(self, size: str | None, quality: str | None) -> float | None:
        table = self.per_image.get(quality or "default")
        if table is None:
            table = self.per_image.get("default")
        if table is None:
            return None
        price = table.get(size or "default")
        if price is None:
            price = table.get("default")
        return price


@dataclass(frozen=True, slots=True)
class PriceFile:
    provider: str
    source: str
    date: str
    currency: str
    models: dict[str, ModelPrice]


def _parse(provider: str, doc: Any) -> PriceFile:
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), dict):
        raise ValueError("expected an object with 'models'")
    if doc.get("currency", "USD") != "USD":
        raise ValueError("only USD prices are supported")
    models: dict[str, ModelPrice] = {}
    for model_id, entry in doc["models"].items():
        per_image = {
            str(q): {str(s): float(p) for s, p in sizes.items()}
            for q, sizes in (entry.get("per_image") or {}).items()
        }
        tokens = entry.get("tokens")
        token_prices = None
        if isinstance(tokens, dict):
            text_in = float(tokens.get("input_per_mtok", 0.0))
            token_prices = TokenPrices(
                text_in,
                float(tokens.get("image_input_per_mtok", text_in)),
                float(tokens["output_per_mtok"]),
            )
        models[str(model_id)] = ModelPrice(per_image, token_prices)
    return PriceFile(provider, str(doc.get("source", "")), str(doc.get("date", "")), "USD", models)


class PriceBook:
    """All price files, by provider prefix."""

    def __init__(self, files: dict[str, PriceFile]) -> None:
        self.files = files

    @classmethod
    def load(cls, directory: Path | None = None) -> PriceBook:
        """Read every ``*.json`` in ``directory``; a broken file is logged and skipped."""
        files: dict[str, PriceFile] = {}
        for path in sorted((directory or PRICES_DIR).glob("*.json")):
            try:
                files[path.stem] = _parse(path.stem, orjson.loads(path.read_bytes()))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.error("price file %s ignored: %s", path.name, exc)
        return cls(files)

    def model_price(self, provider: str, model_id: str) -> ModelPrice | None:
        prices = self.files.get(provider)
        if prices is None:
            return None
        return prices.models.get(model_id) or prices.models.get(WILDCARD)

    def cost(
        self,
        model: str,
        *,
        n: int,
        size: str | None = None,
        quality: str | None = None,
        usage: dict[str, Any] | None = None,
        cached: bool = False,
        provider_type: str | None = None,
    ) -> float | None:
        """USD for ``n`` images of ``model`` (``provider/model-id``), or None when unknown.

        ``provider_type`` is the adapter type of the provider entry, tried when the prefix
        itself has no price file (``openai-eu: {type: openai}`` is priced as ``openai``).
        """
        if cached:
            return 0.0
        provider, sep, model_id = model.partition("/")
        if not sep:
            return None
        price = self.model_price(provider, model_id)
        if price is None and provider_type and provider_type != provider:
            price = self.model_price(provider_type, model_id)
        if price is None:
            return None
        if price.tokens is not None and usage:
            by_tokens = price.tokens.cost(usage)
            if by_tokens is not None:
                return round(by_tokens, 8)
        per_image = price.image_price(size, quality)
        if per_image is None:
            return None
        return round(per_image * n, 8)
