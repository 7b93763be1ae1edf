"""OpenAI-style ``WxH`` sizes ↔ aspect ratios and width/height pairs."""

from __future__ import annotations

from math import gcd

from .failures import invalid_input


def parse_wh(size: str | None) -> tuple[int, int] | None:
    """``"1024x768"`` → (1024, 768); None/``auto`` → None; garbage → 400 naming ``size``."""
    if not size or size == "auto":
        return None
    w, sep, h = size.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) == 0 or int(h) == 0:
        raise invalid_input(f"invalid size {size!r}: expected WIDTHxHEIGHT", "size")
    return int(w), int(h)


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

    def distance(ratio: str) -> float:
        a, _, b = ratio.partition(":")
        return abs(int(a) / int(b) - target)

    return min(allowed, key=distance)


def nearest_size(size: str | None, allowed: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """The allowed (w, h) closest in aspect ratio, then in area, to ``size`` (first if None)."""
    wh = parse_wh(size)
    if wh is None:
        return allowed[0]
    w, h = wh
    return min(allowed, key=lambda a: (abs(a[0] / a[1] - w / h), abs(a[0] * a[1] - w * h)))
