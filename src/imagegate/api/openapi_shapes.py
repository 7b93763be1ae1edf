"""The component schemas of the control plane and the admin API in ``/openapi.json``: the
shapes ``api/control.py``, ``api/views.py`` and ``api/admin.py`` answer with."""

from __future__ import annotations

from typing import Any

from .openapi_common import ref

_STR_OR_NULL = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "description": "ISO 8601 UTC with milliseconds"}
TRACE = {
    "type": "object",
    "required": ["id", "object", "name", "operation", "started_at", "status", "attempts"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "trace"},
        "name": {"type": "string"},
        "operation": {"type": "string"},
        "started_at": {"type": "string"},
        "ended_at": _TIME,
        "duration_ms": {"type": ["number", "null"]},
        "status": {"type": ["integer", "null"]},
        "error_code": _STR_OR_NULL,
        "error_message": _STR_OR_NULL,
        "api_key_id": _STR_OR_NULL,
        "identity_id": _STR_OR_NULL,
        "thread_id": _STR_OR_NULL,
        "prompt_id": _STR_OR_NULL,
        "prompt_version": {"type": ["integer", "null"]},
        "requested_model": _STR_OR_NULL,
        "served_model": _STR_OR_NULL,
        "attempts": {"type": "array", "items": {"type": "object"}},
        "skipped": {"type": ["array", "null"], "items": {"type": "object"}},
        "cache": {"enum": ["hit", "miss", None]},
        "n": {"type": ["integer", "null"]},
        "size": _STR_OR_NULL,
        "quality": _STR_OR_NULL,
        "output_blobs": {"type": ["array", "null"], "items": {"type": "string"}},
        "cost_usd": {"type": ["number", "null"]},
        "usage": {"type": ["object", "null"]},
        "metadata": {"type": ["object", "null"]},
        "notes": {"type": ["array", "null"], "items": {"type": "string"}},
        "workspace_id": {"type": "string"},
    },
}
IDENTITY = {
    "type": "object",
    "required": ["id", "object", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "identity"},
        "display_name": _STR_OR_NULL,
        "email": _STR_OR_NULL,
        "logo_url": _STR_OR_NULL,
        "metadata": {"type": ["array", "null"], "items": {"type": "object"}},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "last_seen_at": _TIME,
        "totals": {
            "type": "object",
            "required": ["requests", "succeeded", "images", "cost_usd", "cost_unknown"],
            "properties": {
                "requests": {"type": "integer", "minimum": 0},
                "succeeded": {"type": "integer", "minimum": 0},
                "images": {"type": "integer", "minimum": 0},
                "cost_usd": {"type": ["number", "null"]},
                "cost_unknown": {"type": "integer", "minimum": 0},
            },
        },
    },
}
THREAD = {
    "type": "object",
    "required": ["id", "object", "tags", "first_seen_at", "last_seen_at", "traces"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "thread"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "first_seen_at": {"type": "string"},
        "last_seen_at": {"type": "string"},
        "traces": {"type": "array", "items": ref("Trace")},
    },
}
PROMPT_VERSION = {
    "type": "object",
    "required": ["prompt_id", "object", "version", "template", "model", "parameters", "created_at"],
    "properties": {
        "prompt_id": {"type": "string"},
        "object": {"const": "prompt_version"},
        "version": {"type": "integer", "minimum": 1},
        "template": _STR_OR_NULL,
        "model": _STR_OR_NULL,
        "parameters": {"type": "object"},
        "created_at": {"type": "string"},
    },
}
PROMPT = {
    "type": "object",
    "required": [
        "id",
        "object",
        "name",
        "description",
        "latest_version",
        "created_at",
        "updated_at",
    ],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "prompt"},
        "name": _STR_OR_NULL,
        "description": _STR_OR_NULL,
        "latest_version": {"type": ["integer", "null"], "minimum": 1},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "latest": ref("PromptVersion"),
        "versions": {"type": "array", "items": ref("PromptVersion")},
    },
}
_COUNT_INT = {"type": "integer", "minimum": 0}
USAGE = {
    "type": "object",
    "required": ["object", "workspace", "group_by", "from", "to", "data"],
    "properties": {
        "object": {"const": "list"},
        "workspace": {"type": "string"},
        "group_by": {"enum": ["key", "identity", "model"]},
        "from": _TIME,
        "to": _TIME,
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "group",
                    "requests",
                    "images",
                    "cost_usd",
                    "unpriced",
                    "errors",
                    "cache_hits",
                ],
                "properties": {
                    "group": {
                        "type": ["string", "null"],
                        "description": "key id, identity id or model; null when unset",
                    },
                    "requests": _COUNT_INT,
                    "images": _COUNT_INT,
                    "cost_usd": {"type": "number", "description": "sum of the known costs"},
                    "unpriced": {**_COUNT_INT, "description": "requests whose cost is unknown"},
                    "errors": _COUNT_INT,
                    "cache_hits": _COUNT_INT,
                },
            },
        },
    },
}
_RATES = {
    "type": "object",
    "required": ["rpm", "images_per_min", "concurrent"],
    "properties": {
        k: {"type": ["integer", "null"], "minimum": 1}
        for k in ("rpm", "images_per_min", "concurrent")
    },
}
_BUDGET = {
    "type": ["object", "null"],
    "required": ["usd", "period"],
    "properties": {"usd": {"type": "number", "minimum": 0}, "period": {"enum": ["day", "month"]}},
}
WORKSPACE_SCHEMA = {
    "type": "object",
    "required": [
        "id",
        "object",
        "name",
        "key_limits",
        "identity_limits",
        "budget",
        "key_budget",
        "identity_budget",
        "allow_unpriced",
        "created_at",
    ],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "workspace"},
        "name": _STR_OR_NULL,
        "key_limits": _RATES,
        "identity_limits": _RATES,
        "budget": _BUDGET,
        "key_budget": _BUDGET,
        "identity_budget": _BUDGET,
        "allow_unpriced": {"type": "boolean"},
        "created_at": _TIME,
    },
}
_KEY_REQUIRED = [
    "id",
    "object",
    "workspace",
    "name",
    "role",
    "prefix",
    "created_at",
    "revoked_at",
    "limits",
    "budget",
]
_KEY_PROPS: dict[str, Any] = {
    "id": {"type": "string"},
    "object": {"const": "api_key"},
    "workspace": {"type": "string"},
    "name": {"type": "string"},
    "role": {"enum": ["member", "admin"]},
    "prefix": {
        "type": "string",
        "description": "the key's first 14 characters and an ellipsis, for lists",
    },
    "created_at": {"type": "string"},
    "revoked_at": _TIME,
    "limits": _RATES,
    "budget": _BUDGET,
}
API_KEY = {"type": "object", "required": _KEY_REQUIRED, "properties": _KEY_PROPS}
API_KEY_CREATED = {
    "type": "object",
    "required": [*_KEY_REQUIRED, "key"],
    "properties": {
        **_KEY_PROPS,
        "key": {"type": "string", "description": "the key; shown only this once"},
    },
}
HEALTH = {
    "type": "object",
    "required": ["status", "providers"],
    "properties": {
        "status": {"const": "ok"},
        "providers": {"type": "array", "items": {"type": "string"}},
    },
}
