"""Jinja2 templates of the console, loaded on first use, autoescaped, with a few filters for
times, money and durations. Jinja2 itself is imported only then: a gateway nobody browses
never loads it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"


def when(ts: float | None) -> str:
    """``2026-01-02 03:04:05`` (UTC) or an em dash."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    if value >= 1000:
        return f"{value / 1000:,.2f} s"
    return f"{value:,.0f} ms"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


class Templates:
    """The environment is built by the first ``render`` (thread-safe, once)."""

    def __init__(self) -> None:
        self._env: Any = None
        self._lock = threading.Lock()

    def _environment(self) -> Any:
        if self._env is None:
            with self._lock:
                if self._env is None:
                    import jinja2

                    env = jinja2.Environment(
                        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                        autoescape=True,
                        trim_blocks=True,
                        lstrip_blocks=True,
                    )
                    env.filters.update(when=when, iso=iso, usd=usd, ms=ms, pct=pct)
                    self._env = env
        return self._env

    def render(self, name: str, **values: Any) -> str:
        text: str = self._environment().get_template(name).render(**values)
        return text
