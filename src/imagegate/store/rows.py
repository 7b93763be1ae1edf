"""Plain values ↔ table rows. Lists and objects are stored as JSON text in both dialects.

Every string the store writes passes through ``clean`` (text columns) or ``dumps`` (JSON
values, keys included), here and nowhere else (the rule itself is in ``clean.py``). ``dumps``
never fails: JSON too deep or too odd for orjson is rebuilt with the offending parts turned
into strings.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..workspaces import ApiKeyRecord, Budget, RateLimits, Workspace
from .clean import ESCAPED_CONTROL, clean, clean_json, clean_opt, stringify
from .driver import Row
from .records import Identity, Prompt, PromptVersion, TraceRecord

TRACE_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "operation",
    "started_at",
    "duration_ms",
    "status",
    "error_code",
    "error_message",
    "api_key_id",
    "identity_id",
    "thread_id",
    "prompt_id",
    "prompt_version",
    "requested_model",
    "served_model",
    "cache",
    "n",
    "size",
    "quality",
    "cost_usd",
    "attempts",
    "skipped",
    "output_blobs",
    "usage",
    "metadata",
    "notes",
    "workspace_id",
    "prompt",
    "request",
)
JSON_COLUMNS = frozenset(
    {"attempts", "skipped", "output_blobs", "usage", "metadata", "notes", "request"}
)
FLOAT_COLUMNS = frozenset({"started_at", "duration_ms", "cost_usd"})


def dumps(value: Any) -> str | None:
    """JSON text of ``value`` with every string cleaned; never raises."""
    if value is None:
        return None
    try:
        text = orjson.dumps(value, default=str).decode("utf-8")
    except (TypeError, ValueError):  # orjson.JSONEncodeError: surrogates, depth, big ints
        text = None
    if text is not None and ESCAPED_CONTROL.search(text) is None:
        return text
    try:
        return orjson.dumps(clean_json(value)).decode("utf-8")
    except (TypeError, ValueError, RecursionError):  # pragma: no cover - clean_json is total
        return orjson.dumps(stringify(value)).decode("utf-8")


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def trace_row(record: TraceRecord) -> tuple[Any, ...]:
    out: list[Any] = []
    for name in TRACE_COLUMNS:
        value = getattr(record, name)
        if name in JSON_COLUMNS:
            value = dumps(value)
        elif name in FLOAT_COLUMNS and value is not None:
            value = float(value)
        elif isinstance(value, str):
            value = clean(value)
        out.append(value)
    return tuple(out)


def trace_from_row(row: Row) -> TraceRecord:
    values = {name: row[name] for name in TRACE_COLUMNS}
    for name in JSON_COLUMNS:
        values[name] = loads(values[name])
    return TraceRecord(**values)


def identity_from_row(row: Row) -> Identity:
    return Identity(
        id=row["id"],
        display_name=row["display_name"],
        email=row["email"],
        logo_url=row["logo_url"],
        metadata=loads(row["metadata"]),
        tags=loads(row["tags"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_seen_at=row["last_seen_at"],
    )


def prompt_from_row(row: Row) -> Prompt:
    return Prompt(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        latest_version=row["latest_version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def version_from_row(row: Row) -> PromptVersion:
    return PromptVersion(
        prompt_id=row["prompt_id"],
        version=row["version"],
        template=row["template"],
        model=row["model"],
        parameters=loads(row["parameters"]) or {},
        created_at=row["created_at"],
    )


# --- workspaces and managed keys: limits and budgets as JSON text ------------------------------
WORKSPACE_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "key_limits",
    "identity_limits",
    "budget",
    "key_budget",
    "identity_budget",
    "allow_unpriced",
    "created_at",
)
KEY_COLUMNS: tuple[str, ...] = (
    "id",
    "workspace_id",
    "name",
    "role",
    "prefix",
    "hash",
    "created_at",
    "revoked_at",
    "limits",
    "budget",
)


def _limits(text: str | None) -> RateLimits:
    data = loads(text) or {}
    return RateLimits(
        **{
            k: int(data[k])
            for k in ("rpm", "images_per_min", "concurrent")
            if data.get(k) is not None
        }
    )


def _budget(text: str | None) -> Budget | None:
    data = loads(text)
    if not data:
        return None
    return Budget(float(data["usd"]), "day" if data.get("period") == "day" else "month")


def _budget_text(budget: Budget | None) -> str | None:
    return None if budget is None else dumps(budget.as_dict())


def workspace_row(ws: Workspace) -> tuple[Any, ...]:
    return (
        clean(ws.id),
        clean_opt(ws.name),
        dumps(ws.key_limits.as_dict()),
        dumps(ws.identity_limits.as_dict()),
        _budget_text(ws.budget),
        _budget_text(ws.key_budget),
        _budget_text(ws.identity_budget),
        int(ws.allow_unpriced),
        float(ws.created_at),
    )


def workspace_from_row(row: Row) -> Workspace:
    return Workspace(
        id=row["id"],
        name=row["name"],
        key_limits=_limits(row["key_limits"]),
        identity_limits=_limits(row["identity_limits"]),
        budget=_budget(row["budget"]),
        key_budget=_budget(row["key_budget"]),
        identity_budget=_budget(row["identity_budget"]),
        allow_unpriced=bool(row["allow_unpriced"]),
        created_at=row["created_at"],
    )


def key_row(key: ApiKeyRecord) -> tuple[Any, ...]:
    return (
        clean(key.id),
        clean(key.workspace_id),
        clean(key.name),
        clean(key.role),
        clean(key.prefix),
        clean(key.hash),
        float(key.created_at),
        None if key.revoked_at is None else float(key.revoked_at),
        dumps(key.limits.as_dict()),
        _budget_text(key.budget),
    )


def key_from_row(row: Row) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        workspace_id=row["workspace_id"],
        name=row["name"],
        role="admin" if row["role"] == "admin" else "member",
        prefix=row["prefix"],
        hash=row["hash"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        limits=_limits(row["limits"]),
        budget=_budget(row["budget"]),
    )
