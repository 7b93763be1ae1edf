"""What the traces add up to: the usage API's totals and the spend budgets are seeded from.

A mixin of ``SqlStore`` (like ``accounts.py``): it needs only ``_fetch`` from it.
"""

from __future__ import annotations

from typing import Any

from .records import GroupBy, UsageRow

GROUP_EXPR: dict[str, str] = {
    "key": "api_key_id",
    "identity": "identity_id",
    "model": "COALESCE(served_model, requested_model)",
}


class UsageQueries:
    """``usage`` and ``spend`` of the ``Store`` protocol."""

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError  # SqlStore's

    async def usage(
        self, workspace: str, group_by: GroupBy, since: float | None, until: float | None
    ) -> list[UsageRow]:
        expr = GROUP_EXPR[group_by]
        sql = (
            f"SELECT {expr} AS grp, COUNT(*) AS requests,"
            " SUM(CASE WHEN status = 200 THEN COALESCE(n, 1) ELSE 0 END) AS images,"
            " SUM(cost_usd) AS cost_usd,"
            " SUM(CASE WHEN status = 200 AND cost_usd IS NULL THEN 1 ELSE 0 END) AS unpriced,"
            " SUM(CASE WHEN status IS NULL OR status <> 200 THEN 1 ELSE 0 END) AS errors,"
            " SUM(CASE WHEN cache = 'hit' THEN 1 ELSE 0 END) AS cache_hits"
            " FROM traces WHERE workspace_id = ?"
        )
        args: list[Any] = [workspace]
        if since is not None:
            sql += " AND started_at >= ?"
            args.append(since)
        if until is not None:
            sql += " AND started_at < ?"
            args.append(until)
        rows = await self._fetch(sql + f" GROUP BY {expr}", *args)
        out = [
            UsageRow(
                group=r["grp"],
                requests=int(r["requests"] or 0),
                images=int(r["images"] or 0),
                cost_usd=round(float(r["cost_usd"] or 0.0), 8),
                unpriced=int(r["unpriced"] or 0),
                errors=int(r["errors"] or 0),
                cache_hits=int(r["cache_hits"] or 0),
            )
            for r in rows
        ]
        # the same order on both dialects (they sort NULL differently): costliest first
        out.sort(key=lambda u: (-u.cost_usd, -u.requests, u.group is None, u.group or ""))
        return out

    async def spend(
        self,
        workspace: str,
        since: float,
        *,
        key_id: str | None = None,
        identity_id: str | None = None,
    ) -> float:
        sql = "SELECT SUM(cost_usd) AS s FROM traces WHERE workspace_id = ? AND started_at >= ?"
        args: list[Any] = [workspace, since]
        if key_id is not None:
            sql += " AND api_key_id = ?"
            args.append(key_id)
        if identity_id is not None:
            sql += " AND identity_id = ?"
            args.append(identity_id)
        rows = await self._fetch(sql, *args)
        return round(float(rows[0]["s"] or 0.0), 8)
