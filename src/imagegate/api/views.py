"""JSON shapes of stored records: the control-plane and admin API's bodies (the CLI prints
the same ones).

Timestamps are ISO 8601 UTC strings with milliseconds; money is ``cost_usd`` (null = unknown).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..store import (
    Identity,
    IdentityTotals,
    Prompt,
    PromptVersion,
    Thread,
    TraceRecord,
    UsageRow,
)
from ..workspaces import ApiKeyRecord, Budget, Workspace


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """ISO 8601 (``2026-01-02T03:04:05Z``, naive = UTC) or unix seconds → unix seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def trace_view(t: TraceRecord) -> dict[str, Any]:
    ended = t.started_at + t.duration_ms / 1000 if t.duration_ms is not None else None
    return {
        "id": t.id,
        "object": "trace",
        "name": t.name,
        "operation": t.operation,
        "started_at": iso(t.started_at),
        "ended_at": iso(ended),
        "duration_ms": None if t.duration_ms is None else round(t.duration_ms, 2),
        "status": t.status,
        "error_code": t.error_code,
        "error_message": t.error_message,
        "api_key_id": t.api_key_id,
        "identity_id": t.identity_id,
        "thread_id": t.thread_id,
        "prompt_id": t.prompt_id,
        "prompt_version": t.prompt_version,
        "requested_model": t.requested_model,
        "served_model": t.served_model,
        "attempts": t.attempts,
        "skipped": t.skipped,
        "cache": t.cache,
        "n": t.n,
        "size": t.size,
        "quality": t.quality,
        "output_blobs": t.output_blobs,
        "cost_usd": t.cost_usd,
        "usage": t.usage,
        "metadata": t.metadata,
        "notes": t.notes,
        "workspace_id": t.workspace_id,
    }


def totals_view(t: IdentityTotals) -> dict[str, Any]:
    return {
        "requests": t.requests,
        "succeeded": t.succeeded,
        "images": t.images,
        "cost_usd": t.cost_usd,
        "cost_unknown": t.cost_unknown,
    }


def identity_view(i: Identity, totals: IdentityTotals | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": i.id,
        "object": "identity",
        "display_name": i.display_name,
        "email": i.email,
        "logo_url": i.logo_url,
        "metadata": i.metadata,
        "tags": i.tags,
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
        "last_seen_at": iso(i.last_seen_at),
    }
    if totals is not None:
        out["totals"] = totals_view(totals)
    return out


def thread_view(t: Thread, traces: list[TraceRecord]) -> dict[str, Any]:
    return {
        "id": t.id,
        "object": "thread",
        "tags": t.tags,
        "first_seen_at": iso(t.first_seen_at),
        "last_seen_at": iso(t.last_seen_at),
        "traces": [trace_view(x) for x in traces],
    }


def version_view(v: PromptVersion) -> dict[str, Any]:
    return {
        "prompt_id": v.prompt_id,
        "object": "prompt_version",
        "version": v.version,
        "template": v.template,
        "model": v.model,
        "parameters": v.parameters,
        "created_at": iso(v.created_at),
    }


def prompt_view(
    p: Prompt, versions: list[PromptVersion] | None = None, latest: PromptVersion | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.id,
        "object": "prompt",
        "name": p.name,
        "description": p.description,
        "latest_version": p.latest_version or None,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }
    if latest is not None:
        out["latest"] = version_view(latest)
    if versions is not None:
        out["versions"] = [version_view(v) for v in versions]
    return out


def page_view(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "has_more": next_cursor is not None,
        "next_cursor": next_cursor,
    }


def _budget(b: Budget | None) -> dict[str, Any] | None:
    return None if b is None else b.as_dict()


def workspace_view(w: Workspace) -> dict[str, Any]:
    return {
        "id": w.id,
        "object": "workspace",
        "name": w.name,
        "key_limits": w.key_limits.as_dict(),
        "identity_limits": w.identity_limits.as_dict(),
        "budget": _budget(w.budget),
        "key_budget": _budget(w.key_budget),
        "identity_budget": _budget(w.identity_budget),
        "allow_unpriced": w.allow_unpriced,
        "created_at": iso(w.created_at),
    }


def key_view(k: ApiKeyRecord) -> dict[str, Any]:
    """A managed key as lists show it: its prefix, never the key or its hash."""
    return {
        "id": k.id,
        "object": "api_key",
        "workspace_id": k.workspace_id,
        "name": k.name,
        "role": k.role,
        "prefix": k.prefix + "\u2026",
        "created_at": iso(k.created_at),
        "revoked_at": iso(k.revoked_at),
        "limits": k.limits.as_dict(),
        "budget": _budget(k.budget),
    }


def usage_view(u: UsageRow) -> dict[str, Any]:
    return {
        "group": u.group,
        "requests": u.requests,
        "images": u.images,
        "cost_usd": u.cost_usd,
        "unpriced": u.unpriced,
        "errors": u.errors,
        "cache_hits": u.cache_hits,
    }
