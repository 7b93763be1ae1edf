"""The console's reads: traces filtered and paged by keyset, identity and thread totals, usage
per day and per model with latency percentiles.

A mixin of ``SqlStore`` (like ``usage.py``): it needs only ``_fetch`` and ``dialect``. Every
query takes the workspace first. Pages are keyset pages (``id < cursor ORDER BY id DESC`` on
the ``(workspace_id, id)`` index, or the identity/name/thread indexes when those filters are
given): the cost of a page does not grow with the number of traces before it, unlike OFFSET.

Latency percentiles are computed from a histogram the database fills (``LATENCY_BUCKETS_MS``,
one CASE expression, the same SQL on SQLite and PostgreSQL, which share no percentile
function): p50/p95 are interpolated inside their bucket, so they are exact to the bucket's
width — plenty for a chart, and the work stays one grouped scan of the range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .records import Page, Thread
from .rows import trace_from_row

LATENCY_BUCKETS_MS: tuple[float, ...] = (
    5,
    10,
    20,
    30,
    50,
    75,
    100,
    150,
    200,
    300,
    500,
    750,
    1_000,
    1_500,
    2_000,
    3_000,
    5_000,
    7_500,
    10_000,
    15_000,
    20_000,
    30_000,
    60_000,
    120_000,
    300_000,
)
BUCKET_EXPR = (
    "CASE WHEN duration_ms IS NULL THEN NULL "
    + " ".join(f"WHEN duration_ms < {b} THEN {i}" for i, b in enumerate(LATENCY_BUCKETS_MS))
    + f" ELSE {len(LATENCY_BUCKETS_MS)} END"
)
DAY_S = 86_400
MODEL_EXPR = "COALESCE(served_model, requested_model)"
METRICS = (
    "COUNT(*) AS requests,"
    " SUM(CASE WHEN status = 200 THEN COALESCE(n, 1) ELSE 0 END) AS images,"
    " SUM(cost_usd) AS cost_usd,"
    " SUM(CASE WHEN status IS NULL OR status <> 200 THEN 1 ELSE 0 END) AS errors,"
    " SUM(CASE WHEN cache = 'hit' THEN 1 ELSE 0 END) AS cache_hits,"
    " SUM(CASE WHEN cache IS NOT NULL THEN 1 ELSE 0 END) AS cache_asked"
)
LIKE_ESCAPE = "!"


@dataclass(slots=True)
class TraceFilter:
    """What the console's trace list may be narrowed by; newest first, keyset ``cursor``."""

    identity_id: str | None = None
    thread_id: str | None = None
    name: str | None = None
    model: str | None = None  # requested or served
    provider: str | None = None  # the part before "/" of the model that served (or was asked)
    prompt_id: str | None = None
    status: int | None = None
    succeeded: bool | None = None
    cache: str | None = None  # "hit" | "miss"
    since: float | None = None
    until: float | None = None
    text: str | None = None  # a substring of the prompt, any case
    cursor: str | None = None  # the last id of the previous page
    limit: int = 50


@dataclass(slots=True)
class Totals:
    """What a group of traces adds up to (an identity, a thread, a day, a model)."""

    requests: int = 0
    images: int = 0
    cost_usd: float = 0.0
    errors: int = 0
    cache_hits: int = 0
    cache_asked: int = 0
    last_at: float | None = None
    latency: list[int] = field(default_factory=list)  # counts per LATENCY_BUCKETS_MS bucket

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.cache_asked if self.cache_asked else 0.0

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile of the duration (ms) from the histogram; None without data."""
        total = sum(self.latency)
        if not total:
            return None
        target = q * total
        seen = 0
        for i, count in enumerate(self.latency):
            if count and seen + count >= target:
                lo = LATENCY_BUCKETS_MS[i - 1] if i else 0.0
                if i >= len(LATENCY_BUCKETS_MS):
                    return float(lo)
                hi = LATENCY_BUCKETS_MS[i]
                return float(lo + (hi - lo) * (target - seen) / count)
            seen += count
        return float(LATENCY_BUCKETS_MS[-1])

    def add(self, other: Totals) -> None:
        self.requests += other.requests
        self.images += other.images
        self.cost_usd += other.cost_usd
        self.errors += other.errors
        self.cache_hits += other.cache_hits
        self.cache_asked += other.cache_asked
        if other.last_at is not None:
            self.last_at = max(self.last_at or other.last_at, other.last_at)
        _add_hist(self.latency, other.latency)


def _add_hist(into: list[int], more: list[int]) -> None:
    if len(into) < len(more):
        into.extend([0] * (len(more) - len(into)))
    for i, count in enumerate(more):
        into[i] += count


def _totals(row: Any) -> Totals:
    return Totals(
        requests=int(row["requests"] or 0),
        images=int(row["images"] or 0),
        cost_usd=round(float(row["cost_usd"] or 0.0), 8),
        errors=int(row["errors"] or 0),
        cache_hits=int(row["cache_hits"] or 0),
        cache_asked=int(row["cache_asked"] or 0),
    )


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` taken literally (ESCAPE '!')."""
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped.lower()}%"


class BrowseQueries:
    """The console's queries (see the module docstring)."""

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError  # SqlStore's

    @property
    def dialect(self) -> str:
        raise NotImplementedError  # SqlStore's

    # --- traces ------------------------------------------------------------------------
    async def browse_traces(self, workspace: str, f: TraceFilter) -> Page:
        where: list[str] = ["workspace_id = ?"]
        args: list[Any] = [workspace]
        for column in ("identity_id", "thread_id", "name", "prompt_id", "cache", "status"):
            value = getattr(f, column)
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if f.model is not None:
            where.append("(requested_model = ? OR served_model = ?)")
            args += [f.model, f.model]
        if f.provider is not None:
            where.append(f"{MODEL_EXPR} LIKE ? ESCAPE '{LIKE_ESCAPE}'")
            args.append(like_pattern(f.provider + "/")[1:])  # a prefix: no leading %
        if f.succeeded is not None:
            where.append("status = 200" if f.succeeded else "(status IS NULL OR status <> 200)")
        if f.since is not None:
            where.append("started_at >= ?")
            args.append(f.since)
        if f.until is not None:
            where.append("started_at < ?")
            args.append(f.until)
        if f.text:
            where.append(f"LOWER(prompt) LIKE ? ESCAPE '{LIKE_ESCAPE}'")
            args.append(like_pattern(f.text))
        if f.cursor is not None:
            where.append("id < ?")
            args.append(f.cursor)
        sql = "SELECT * FROM traces WHERE " + " AND ".join(where) + " ORDER BY id DESC LIMIT ?"
        rows = await self._fetch(sql, *args, f.limit + 1)
        items = [trace_from_row(r) for r in rows[: f.limit]]
        more = len(rows) > f.limit
        return Page(items, items[-1].id if more and items else None)

    async def trace_image(self, workspace: str, trace_id: str, index: int) -> str | None:
        """The blob key of output image ``index`` of a trace of ``workspace``, if any."""
        rows = await self._fetch(
            "SELECT output_blobs, status FROM traces WHERE workspace_id = ? AND id = ?",
            workspace,
            trace_id,
        )
        if not rows:
            return None
        blobs = trace_from_row_blobs(rows[0]["output_blobs"])
        return blobs[index] if 0 <= index < len(blobs) else None

    # --- identities and threads ----------------------------------------------------------
    async def identity_totals_many(self, workspace: str, ids: list[str]) -> dict[str, Totals]:
        """Totals of each identity in ``ids`` (one grouped query on the identity index)."""
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        rows = await self._fetch(
            f"SELECT identity_id AS grp, {METRICS}, MAX(started_at) AS last_at FROM traces"
            f" WHERE workspace_id = ? AND identity_id IN ({marks}) GROUP BY identity_id",
            workspace,
            *ids,
        )
        out: dict[str, Totals] = {}
        for r in rows:
            totals = _totals(r)
            totals.last_at = r["last_at"]
            out[r["grp"]] = totals
        return out

    async def list_threads(
        self, workspace: str, cursor: tuple[float, str] | None, limit: int
    ) -> tuple[list[Thread], tuple[float, str] | None]:
        """Threads seen most recently first; the cursor is the last (last_seen_at, id)."""
        sql = "SELECT * FROM threads WHERE workspace_id = ?"
        args: list[Any] = [workspace]
        if cursor is not None:
            sql += " AND (last_seen_at < ? OR (last_seen_at = ? AND id < ?))"
            args += [cursor[0], cursor[0], cursor[1]]
        rows = await self._fetch(
            sql + " ORDER BY last_seen_at DESC, id DESC LIMIT ?", *args, limit + 1
        )
        items = [Thread(r["id"], [], r["first_seen_at"], r["last_seen_at"]) for r in rows[:limit]]
        last = items[-1] if len(rows) > limit and items else None
        return items, (last.last_seen_at, last.id) if last else None

    async def thread_counts(self, workspace: str, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        rows = await self._fetch(
            f"SELECT thread_id AS grp, COUNT(*) AS c FROM traces WHERE workspace_id = ?"
            f" AND thread_id IN ({marks}) GROUP BY thread_id",
            workspace,
            *ids,
        )
        return {r["grp"]: int(r["c"]) for r in rows}

    # --- usage ---------------------------------------------------------------------------
    def _day_expr(self) -> str:
        if self.dialect == "postgresql":
            return f"FLOOR(started_at / {DAY_S})"
        return f"CAST(started_at / {DAY_S} AS INTEGER)"  # times are after 1970: truncation

    async def usage_by(
        self, workspace: str, by: str, since: float, until: float
    ) -> dict[Any, Totals]:
        """Totals per UTC day (``by="day"``: keys are days since the epoch) or per model."""
        expr = self._day_expr() if by == "day" else MODEL_EXPR
        where = "workspace_id = ? AND started_at >= ? AND started_at < ?"
        rows = await self._fetch(
            f"SELECT {expr} AS grp, {METRICS} FROM traces WHERE {where} GROUP BY {expr}",
            workspace,
            since,
            until,
        )
        out: dict[Any, Totals] = {}
        for r in rows:
            out[_group_key(r["grp"], by)] = _totals(r)
        hist = await self._fetch(
            f"SELECT {expr} AS grp, {BUCKET_EXPR} AS b, COUNT(*) AS c FROM traces"
            f" WHERE {where} AND duration_ms IS NOT NULL GROUP BY {expr}, {BUCKET_EXPR}",
            workspace,
            since,
            until,
        )
        for r in hist:
            totals = out.setdefault(_group_key(r["grp"], by), Totals())
            bucket = int(r["b"])
            _add_hist(totals.latency, [0] * bucket + [int(r["c"])])
        return out


def _group_key(value: Any, by: str) -> Any:
    if by == "day":
        return int(value)
    return value


def trace_from_row_blobs(text: str | None) -> list[str]:
    """The ``output_blobs`` column (JSON text) as a list of keys."""
    if not text:
        return []
    value = orjson.loads(text)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


__all__ = ["LATENCY_BUCKETS_MS", "BrowseQueries", "Totals", "TraceFilter"]
