"""Pieces every part of ``/openapi.json`` shares: schema references, orq's error responses,
list pages, query and path parameters, and the shape of a control-plane operation."""

from __future__ import annotations

from typing import Any

from ..workspaces import WORKSPACE_ID
from .params import MAX_ID_CHARS, MAX_TEXT_CHARS

NO_CONTROL = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"  # api.params.clean_text; empty = absent


# ``Idempotency-Key`` on every image POST and job submit (api/idempotency.py, long-calls.md)
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Run once, replay after: the same key and body get the first answer"
    " (`idempotent-replayed: true`); another body is a 422 `idempotency_key_reused`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}
IDEMPOTENCY_ERRORS: tuple[tuple[str, str], ...] = (
    ("409", "`idempotency_key_in_use`: the first request with this key still runs"),
    ("422", "`idempotency_key_reused`: this key was used with another body"),
)


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def error_responses(
    *codes: tuple[str, str], headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    """orq's error body for each (status, description)."""
    out: dict[str, Any] = {}
    for code, desc in codes:
        out[code] = {
            "description": desc,
            "content": {"application/json": {"schema": ref("Error")}},
        }
        if headers:
            out[code]["headers"] = headers
    return out


def list_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["object", "data", "has_more", "next_cursor"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": ref(item)},
            "has_more": {"type": "boolean"},
            "next_cursor": {"type": ["string", "null"]},
        },
    }


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def text_schema(max_chars: int = MAX_TEXT_CHARS) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_chars, "pattern": NO_CONTROL}


def path_id(name: str, what: str) -> dict[str, Any]:
    schema = {**text_schema(MAX_ID_CHARS), "minLength": 1}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": f"the {what} id; one that cannot exist is a 404",
    }


READ_ERRORS = (
    ("400", "invalid query parameter"),
    ("401", "missing or invalid API key"),
    ("403", "not allowed for this key (a member naming another workspace, or an admin route)"),
    ("404", "not found"),
    ("503", "store unavailable"),
)
WORKSPACE_ID_PATTERN = f"^{WORKSPACE_ID.pattern}$"
WORKSPACE = {
    "name": "x-imagegate-workspace",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": WORKSPACE_ID_PATTERN},
    "description": "act in this workspace (admin keys; a member key may only name its"
    " own, 403 otherwise); malformed is a 404",
}


def control_op(
    summary: str,
    ok: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    status: str = "200",
    workspace: bool = True,
) -> dict[str, Any]:
    """A control-plane or admin operation; ``workspace``: it reads ``x-imagegate-workspace``."""
    errors = (
        READ_ERRORS
        if body is None
        else (*READ_ERRORS, ("409", "the id is taken"), ("413", "body too large"))
    )
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"ApiKey": []}],
        "responses": {
            status: {"description": "ok", "content": {"application/json": {"schema": ok}}},
            **error_responses(*errors),
        },
    }
    params = [*(params or []), *([WORKSPACE] if workspace else [])]
    if params:
        operation["parameters"] = params
    if body is not None:
        content = {"application/json": {"schema": ref(body)}}
        operation["requestBody"] = {"required": True, "content": content}
    return operation
