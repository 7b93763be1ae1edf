"""Plain values ↔ table rows. Lists and objects are stored as JSON text in both dialects."""

from __future__ import annotations

from typing import Any

import orjson

from ..telemetry.trace import TraceRecord
from .base import Identity, Prompt, PromptVersion
from .driver import Row

TRACE_COLUMNS: tuple[str, ...] = (
    "id", "name", "operation", "started_at", "duration_ms", "status", "error_code",
    "error_message", "api_key_id", "identity_id", "thread_id", "prompt_id", "prompt_version",
    "requested_model", "served_model", "cache", "n", "size", "quality", "cost_usd",
    "attempts", "skipped", "output_blobs", "usage", "metadata", "notes",
)  # fmt: skip
JSON_COLUMNS = frozenset({"attempts", "skipped", "output_blobs", "usage", "metadata", "notes"})
FLOAT_COLUMNS = frozenset({"started_at", "duration_ms", "cost_usd"})


def dumps(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=str).decode("utf-8")


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
