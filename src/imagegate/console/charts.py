"""SVG chart geometry, computed on the server: the templates only place the numbers.

No script and no inline style (the console's CSP forbids both): bars are ``<rect>`` elements
with coordinates as attributes and colours from CSS classes, each with a ``<title>`` naming
its day and value for screen readers and hover.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

WIDTH = 720.0
HEIGHT = 180.0
LEFT = 56.0  # room for the axis labels
BOTTOM = 22.0


@dataclass(slots=True)
class BarShape:
    x: float
    y: float
    w: float
    h: float
    key: str  # the day (or group) it stands for
    value: float
    title: str


@dataclass(slots=True)
class LineShape:
    points: str  # "x,y x,y …" for <polyline>
    css: str
    label: str
    dots: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, title


@dataclass(slots=True)
class Chart:
    title: str
    width: float = WIDTH
    height: float = HEIGHT
    bars: list[BarShape] = field(default_factory=list)
    lines: list[LineShape] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)  # y, label
    labels: list[tuple[float, str]] = field(default_factory=list)  # x, label (x axis)


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 × 10^k)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= value:
            return float(step * exp)
    return float(10 * exp)  # pragma: no cover


def _frame(chart: Chart, top: float, fmt: Callable[[float], str], keys: list[str]) -> None:
    plot_h = chart.height - BOTTOM - 8
    for i in range(5):
        value = top * i / 4
        chart.ticks.append((round(chart.height - BOTTOM - plot_h * i / 4, 1), fmt(value)))
    slot = (chart.width - LEFT) / max(len(keys), 1)
    every = max(1, math.ceil(len(keys) / 8))  # at most ~8 x labels
    for i, key in enumerate(keys):
        if i % every == 0:
            chart.labels.append(
                (round(LEFT + slot * (i + 0.5), 1), key[5:] if len(key) == 10 else key)
            )


def bar_chart(
    title: str, points: list[tuple[str, float]], fmt: Callable[[float], str], unit: str
) -> Chart:
    """One bar per point (key, value) over a zero-based axis."""
    chart = Chart(title)
    top = nice_max(max((v for _, v in points), default=0.0))
    plot_h = chart.height - BOTTOM - 8
    slot = (chart.width - LEFT) / max(len(points), 1)
    for i, (key, value) in enumerate(points):
        h = plot_h * value / top
        chart.bars.append(
            BarShape(
                x=round(LEFT + slot * i + slot * 0.15, 1),
                y=round(chart.height - BOTTOM - h, 1),
                w=round(slot * 0.7, 1),
                h=round(h, 1),
                key=key,
                value=value,
                title=f"{key}: {fmt(value)} {unit}".strip(),
            )
        )
    _frame(chart, top, fmt, [k for k, _ in points])
    return chart


def line_chart(
    title: str,
    keys: list[str],
    series: list[tuple[str, str, list[float | None]]],
    fmt: Callable[[float], str],
) -> Chart:
    """Lines (label, css class, values per key; None = no data that day) on a shared axis."""
    chart = Chart(title)
    top = nice_max(max((v for _, _, vs in series for v in vs if v is not None), default=0.0))
    plot_h = chart.height - BOTTOM - 8
    slot = (chart.width - LEFT) / max(len(keys), 1)
    for label, css, values in series:
        line = LineShape("", css, label)
        coords = []
        for i, value in enumerate(values):
            if value is None:
                continue
            x = round(LEFT + slot * (i + 0.5), 1)
            y = round(chart.height - BOTTOM - plot_h * value / top, 1)
            coords.append(f"{x},{y}")
            line.dots.append((x, y, f"{keys[i]}: {label} {fmt(value)}"))
        line.points = " ".join(coords)
        chart.lines.append(line)
    _frame(chart, top, fmt, keys)
    return chart
