"""Usage: requests, images, cost, error rate, cache hit rate and p50/p95 latency per UTC day
and per model and provider, over a chosen range (default: the last 14 days)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.responses import Response

from ..errors import InvalidRequest
from ..store.browse import DAY_S, Totals
from .charts import bar_chart, line_chart
from .render import ms
from .web import Ctx

DEFAULT_DAYS = 14
MAX_DAYS = 366


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    if len(value) != 10 or not value.isascii():
        raise InvalidRequest(f"{name}: a date as YYYY-MM-DD", param=name)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name}: a date as YYYY-MM-DD", param=name) from None


def day_range(q: Any, today: date) -> tuple[date, date]:
    """[first, last] days, inclusive, at most ``MAX_DAYS`` long."""
    last = _day(q.get("to"), "to") or today
    first = _day(q.get("from"), "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        first, last = last, first
    if (last - first).days >= MAX_DAYS:
        raise InvalidRequest(f"from/to: at most {MAX_DAYS} days", param="from")
    return first, last


def _epoch_day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _dollars(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.1 or value == 0 else f"${value:.3f}"


def _rate(value: float) -> str:
    return f"{value * 100:.0f} %"


def groups(
    by_model: dict[Any, Totals],
) -> tuple[list[tuple[str, Totals]], list[tuple[str, Totals]]]:
    """Per model and per provider (the part before '/'), busiest first."""
    models = sorted(
        ((m or "(none)", t) for m, t in by_model.items()), key=lambda p: (-p[1].requests, p[0])
    )
    providers: dict[str, Totals] = {}
    for model, totals in models:
        providers.setdefault(model.partition("/")[0], Totals()).add(totals)
    return models, sorted(providers.items(), key=lambda p: (-p[1].requests, p[0]))


async def get_usage(ctx: Ctx) -> Response:
    today = datetime.fromtimestamp(time.time(), UTC).date()
    first, last = day_range(ctx.request.query_params, today)
    since = _epoch_day(first) * DAY_S
    until = (_epoch_day(last) + 1) * DAY_S
    await ctx.settle()
    browse = ctx.console.browse
    per_day = await browse.usage_by(ctx.workspace, "day", float(since), float(until))
    per_model = await browse.usage_by(ctx.workspace, "model", float(since), float(until))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    keys = [d.isoformat() for d in days]
    rows = [(k, per_day.get(_epoch_day(d), Totals())) for k, d in zip(keys, days, strict=True)]
    total = Totals()
    for _, t in rows:
        total.add(t)
    charts = [
        bar_chart("Requests per day", [(k, t.requests) for k, t in rows], _count, "requests"),
        bar_chart("Images per day", [(k, t.images) for k, t in rows], _count, "images"),
        bar_chart("Cost per day (USD)", [(k, t.cost_usd) for k, t in rows], _dollars, ""),
        line_chart(
            "Error and cache hit rate",
            keys,
            [
                ("errors", "line-bad", [t.error_rate if t.requests else None for _, t in rows]),
                (
                    "cache hits",
                    "line-ok",
                    [t.cache_hit_rate if t.cache_asked else None for _, t in rows],
                ),
            ],
            _rate,
        ),
        line_chart(
            "Latency p50 / p95",
            keys,
            [
                ("p50", "line-a", [t.percentile(0.5) for _, t in rows]),
                ("p95", "line-b", [t.percentile(0.95) for _, t in rows]),
            ],
            ms,
        ),
    ]
    models, providers = groups(per_model)
    return ctx.render(
        "usage.html",
        title="Usage",
        first=first.isoformat(),
        last=last.isoformat(),
        charts=charts,
        rows=rows,
        total=total,
        models=models,
        providers=providers,
    )
