"""OpenAI-style ``WxH`` sizes: one parser, and the translations providers need (aspect
ratios, nearest listed sizes, side tiers, rule-based size sets, batches of ``n``).

Providers that take an aspect ratio instead of ``WxH`` still declare their sizes as a set, so
the routing plan can skip them; ``RatioSizes`` and ``GridSizes`` are such sets for a rule::

    sizes = RatioSizes(("1:1", "16:9"), native=("1344x768",))
    "1920x1080" in sizes   # True: 16:9 exactly
    "1536x1024" in sizes   # True: an OpenAI size is always translated (to the nearest ratio)
    "4096x512" in sizes    # False: 8:1 is nowhere near a ratio the model renders
"""

from __future__ import annotations

from collections.abc import Iterable
from math import gcd

from .failures import invalid_input

# Every size the OpenAI images API accepts for some model.
OPENAI_SIZES = frozenset(
    {"256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792"}
)
MAX_DIGITS = 6  # per side: bounds the work on a hostile size string


def split_wh(size: str | None) -> tuple[int, int] | None:
    """``"1024x768"`` → (1024, 768); anything else (None, ``auto``, garbage) → None."""
    if not size:
        return None
    w, sep, h = size.lower().partition("x")
    if not sep or not _digits(w) or not _digits(h):
        return None
    width, height = int(w), int(h)
    if width == 0 or height == 0:
        return None
    return width, height


def _digits(text: str) -> bool:
    # ASCII only: str.isdigit() accepts "²", which int() then refuses
    return 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()


def parse_wh(size: str | None) -> tuple[int, int] | None:
    """``"1024x768"`` → (1024, 768); None/``auto`` → None; garbage → 400 naming ``size``."""
    if not size or size == "auto":
        return None
    wh = split_wh(size)
    if wh is None:
        raise invalid_input(f"invalid size {size!r}: expected WIDTHxHEIGHT", "size")
    return wh


def _ratio(ratio: str) -> float:
    a, _, b = ratio.partition(":")
    return int(a) / int(b)


def aspect_ratio(size: str | None, allowed: tuple[str, ...], default: str = "1:1") -> str:
    """The allowed ``"W:H"`` ratio closest to ``size`` (exact when it reduces to one)."""
    wh = parse_wh(size)
    if wh is None:
        return default
    w, h = wh
    g = gcd(w, h)
    exact = f"{w // g}:{h // g}"
    if exact in allowed:
        return exact
    target = w / h
    return min(allowed, key=lambda ratio: abs(_ratio(ratio) - target))


def nearest_size(size: str | None, allowed: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """The allowed (w, h) closest in aspect ratio, then in area, to ``size`` (first if None)."""
    wh = parse_wh(size)
    if wh is None:
        return allowed[0]
    w, h = wh
    return min(allowed, key=lambda a: (abs(a[0] / a[1] - w / h), abs(a[0] * a[1] - w * h)))


def side_tier(size: str | None, tiers: tuple[tuple[int, str], ...]) -> str | None:
    """The first tier label whose limit covers the longest side (``"2K"`` for 2048x2048)."""
    wh = split_wh(size)
    if wh is None:
        return None
    longest = max(wh)
    for limit, label in tiers:
        if longest <= limit:
            return label
    return tiers[-1][1]


def batches(n: int, per_call: int) -> list[int]:
    """How many images each call asks for: ``batches(6, 4) == [4, 2]``."""
    per_call = max(1, per_call)
    full, rest = divmod(max(1, n), per_call)
    return [per_call] * full + ([rest] if rest else [])


class RuleSizes(frozenset[str]):
    """Listed sizes plus every ``WxH`` a rule accepts (``accepts``). Iterating yields only the
    listed sizes; membership applies the rule. Equal only to the same listed sizes under the
    same rule: equal members are not enough."""

    def rule(self) -> tuple[object, ...]:
        raise NotImplementedError

    def accepts(self, width: int, height: int) -> bool:
        raise NotImplementedError

    def __contains__(self, size: object) -> bool:
        if frozenset.__contains__(self, size):
            return True
        wh = split_wh(size) if isinstance(size, str) else None
        return wh is not None and self.accepts(*wh)

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return False
        assert isinstance(other, RuleSizes)
        return frozenset(self) == frozenset(other) and self.rule() == other.rule()

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((frozenset.__hash__(self), self.rule()))


class RatioSizes(RuleSizes):
    """The sizes a model that renders fixed aspect ratios can serve: ``auto``, every OpenAI
    size (translated to the nearest ratio), the model's native sizes, and any ``WxH`` within
    ``tolerance`` (relative) of one of ``ratios``."""

    ratios: tuple[str, ...]
    tolerance: float

    def __new__(
        cls, ratios: Iterable[str], native: Iterable[str] = (), tolerance: float = 0.05
    ) -> RatioSizes:
        self = super().__new__(cls, {"auto", *OPENAI_SIZES, *native})
        self.ratios = tuple(ratios)
        self.tolerance = tolerance
        return self

    def rule(self) -> tuple[object, ...]:
        return (self.ratios, self.tolerance)

    def accepts(self, width: int, height: int) -> bool:
        target = width / height
        return any(abs(target / _ratio(r) - 1) <= self.tolerance for r in self.ratios)


class GridSizes(RuleSizes):
    """Any ``WxH`` on a grid: both sides multiples of ``step``, the ratio within
    ``1:max_ratio``..``max_ratio:1``, the longest side at most ``max_edge`` and the area at
    most ``max_pixels``; plus the listed sizes (``auto`` and presets)."""

    step: int
    max_ratio: float
    max_edge: int
    max_pixels: int

    def __new__(
        cls,
        listed: Iterable[str],
        *,
        step: int,
        max_ratio: float,
        max_edge: int,
        max_pixels: int,
    ) -> GridSizes:
        self = super().__new__(cls, listed)
        self.step, self.max_ratio = step, max_ratio
        self.max_edge, self.max_pixels = max_edge, max_pixels
        return self

    def rule(self) -> tuple[object, ...]:
        return (self.step, self.max_ratio, self.max_edge, self.max_pixels)

    def accepts(self, width: int, height: int) -> bool:
        return (
            width % self.step == 0
            and height % self.step == 0
            and max(width, height) <= self.max_edge
            and width * height <= self.max_pixels
            and max(width, height) <= self.max_ratio * min(width, height)
        )
