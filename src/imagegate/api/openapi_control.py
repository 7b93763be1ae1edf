"""The control plane, files, metrics and admin routes of ``/openapi.json`` (the image routes
and the document itself are built in ``openapi.py``)."""

from __future__ import annotations

from typing import Any

from ..workspaces import WORKSPACE_ID
from .params import MAX_ID_CHARS, MAX_TEXT_CHARS, MAX_TIME_CHARS

NO_CONTROL = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"  # api.params.clean_text; empty = absent


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


# --- the control plane, files, metrics: shapes of api/control.py and api/views.py ---------

_STR_OR_NULL = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "description": "ISO 8601 UTC with milliseconds"}
TRACE = {
    "type": "object",
    "required": ["id", "object", "name", "operation", "started_at", "status", "attempts"],
    "properties": {
        "id": {"type": "string"}, "object": {"const": "trace"}, "name": {"type": "string"},
        "operation": {"type": "string"}, "started_at": {"type": "string"}, "ended_at": _TIME,
        "duration_ms": {"type": ["number", "null"]}, "status": {"type": ["integer", "null"]},
        "error_code": _STR_OR_NULL, "error_message": _STR_OR_NULL, "api_key_id": _STR_OR_NULL,
        "identity_id": _STR_OR_NULL, "thread_id": _STR_OR_NULL, "prompt_id": _STR_OR_NULL,
        "prompt_version": {"type": ["integer", "null"]}, "requested_model": _STR_OR_NULL,
        "served_model": _STR_OR_NULL,
        "attempts": {"type": "array", "items": {"type": "object"}},
        "skipped": {"type": ["array", "null"], "items": {"type": "object"}},
        "cache": {"enum": ["hit", "miss", None]}, "n": {"type": ["integer", "null"]},
        "size": _STR_OR_NULL, "quality": _STR_OR_NULL,
        "output_blobs": {"type": ["array", "null"], "items": {"type": "string"}},
        "cost_usd": {"type": ["number", "null"]}, "usage": {"type": ["object", "null"]},
        "metadata": {"type": ["object", "null"]},
        "notes": {"type": ["array", "null"], "items": {"type": "string"}},
        "workspace_id": {"type": "string"},
    },
}  # fmt: skip
IDENTITY = {
    "type": "object",
    "required": ["id", "object", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string"}, "object": {"const": "identity"},
        "display_name": _STR_OR_NULL, "email": _STR_OR_NULL, "logo_url": _STR_OR_NULL,
        "metadata": {"type": ["array", "null"], "items": {"type": "object"}},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "created_at": {"type": "string"}, "updated_at": {"type": "string"},
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
}  # fmt: skip
THREAD = {
    "type": "object",
    "required": ["id", "object", "tags", "first_seen_at", "last_seen_at", "traces"],
    "properties": {
        "id": {"type": "string"}, "object": {"const": "thread"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "first_seen_at": {"type": "string"}, "last_seen_at": {"type": "string"},
        "traces": {"type": "array", "items": ref("Trace")},
    },
}  # fmt: skip
PROMPT_VERSION = {
    "type": "object",
    "required": ["prompt_id", "object", "version", "template", "model", "parameters",
                 "created_at"],
    "properties": {
        "prompt_id": {"type": "string"}, "object": {"const": "prompt_version"},
        "version": {"type": "integer", "minimum": 1}, "template": _STR_OR_NULL,
        "model": _STR_OR_NULL, "parameters": {"type": "object"},
        "created_at": {"type": "string"},
    },
}  # fmt: skip
PROMPT = {
    "type": "object",
    "required": ["id", "object", "name", "description", "latest_version", "created_at",
                 "updated_at"],
    "properties": {
        "id": {"type": "string"}, "object": {"const": "prompt"}, "name": _STR_OR_NULL,
        "description": _STR_OR_NULL,
        "latest_version": {"type": ["integer", "null"], "minimum": 1},
        "created_at": {"type": "string"}, "updated_at": {"type": "string"},
        "latest": ref("PromptVersion"),
        "versions": {"type": "array", "items": ref("PromptVersion")},
    },
}  # fmt: skip
_COUNT_INT = {"type": "integer", "minimum": 0}
USAGE = {
    "type": "object",
    "required": ["object", "workspace", "group_by", "from", "to", "data"],
    "properties": {
        "object": {"const": "list"}, "workspace": {"type": "string"},
        "group_by": {"enum": ["key", "identity", "model"]}, "from": _TIME, "to": _TIME,
        "data": {"type": "array", "items": {
            "type": "object",
            "required": ["group", "requests", "images", "cost_usd", "unpriced", "errors",
                         "cache_hits"],
            "properties": {
                "group": {"type": ["string", "null"],
                          "description": "key id, identity id or model; null when unset"},
                "requests": _COUNT_INT, "images": _COUNT_INT,
                "cost_usd": {"type": "number", "description": "sum of the known costs"},
                "unpriced": {**_COUNT_INT, "description": "requests whose cost is unknown"},
                "errors": _COUNT_INT, "cache_hits": _COUNT_INT,
            },
        }},
    },
}  # fmt: skip
_RATES = {
    "type": "object",
    "required": ["rpm", "images_per_min", "concurrent"],
    "properties": {k: {"type": ["integer", "null"], "minimum": 1}
                   for k in ("rpm", "images_per_min", "concurrent")},
}  # fmt: skip
_BUDGET = {
    "type": ["object", "null"],
    "required": ["usd", "period"],
    "properties": {"usd": {"type": "number", "minimum": 0},
                   "period": {"enum": ["day", "month"]}},
}  # fmt: skip
WORKSPACE_SCHEMA = {
    "type": "object",
    "required": ["id", "object", "name", "key_limits", "identity_limits", "budget",
                 "key_budget", "identity_budget", "allow_unpriced", "created_at"],
    "properties": {
        "id": {"type": "string"}, "object": {"const": "workspace"}, "name": _STR_OR_NULL,
        "key_limits": _RATES, "identity_limits": _RATES, "budget": _BUDGET,
        "key_budget": _BUDGET, "identity_budget": _BUDGET,
        "allow_unpriced": {"type": "boolean"}, "created_at": _TIME,
    },
}  # fmt: skip
_KEY_REQUIRED = ["id", "object", "workspace", "name", "role", "prefix", "created_at",
                 "revoked_at", "limits", "budget"]  # fmt: skip
_KEY_PROPS: dict[str, Any] = {
    "id": {"type": "string"}, "object": {"const": "api_key"},
    "workspace": {"type": "string"}, "name": {"type": "string"},
    "role": {"enum": ["member", "admin"]},
    "prefix": {"type": "string",
               "description": "the key's first 14 characters and an ellipsis, for lists"},
    "created_at": {"type": "string"}, "revoked_at": _TIME, "limits": _RATES,
    "budget": _BUDGET,
}  # fmt: skip
API_KEY = {"type": "object", "required": _KEY_REQUIRED, "properties": _KEY_PROPS}
API_KEY_CREATED = {
    "type": "object",
    "required": [*_KEY_REQUIRED, "key"],
    "properties": {**_KEY_PROPS,
                   "key": {"type": "string", "description": "the key; shown only this once"}},
}  # fmt: skip
HEALTH = {
    "type": "object",
    "required": ["status", "providers"],
    "properties": {"status": {"const": "ok"},
                   "providers": {"type": "array", "items": {"type": "string"}}},
}  # fmt: skip


def list_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["object", "data", "has_more", "next_cursor"],
        "properties": {
            "object": {"const": "list"}, "data": {"type": "array", "items": ref(item)},
            "has_more": {"type": "boolean"}, "next_cursor": _STR_OR_NULL,
        },
    }  # fmt: skip


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def _text(max_chars: int = MAX_TEXT_CHARS) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_chars, "pattern": NO_CONTROL}


def _path_id(name: str, what: str) -> dict[str, Any]:
    schema = {**_text(MAX_ID_CHARS), "minLength": 1}
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": f"the {what} id; one that cannot exist is a 404"}  # fmt: skip


LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
               "page size, 1–500 in ASCII digits")  # fmt: skip
CURSOR = _query("cursor", _text(MAX_ID_CHARS), "`next_cursor` of the previous page")
TIME = {"type": "string", "maxLength": MAX_TIME_CHARS,
        "pattern": "^(|[0-9]{1,12}(\\.[0-9]{1,9})?|[0-9]{4}-[0-9]{2}-[0-9]{2}"
                   "([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,6})?)?"
                   "([Zz]|[+-][0-9]{2}:[0-9]{2})?)?)$"}  # fmt: skip
TRACE_FILTERS = [
    LIMIT, CURSOR,
    _query("identity_id", _text(), "only traces of this identity"),
    _query("thread_id", _text(), "only traces of this thread"),
    _query("name", _text(), "only traces with this name"),
    _query("model", _text(), "requested or served model"),
    _query("status", {"type": "string", "pattern": "^(|success|error|[1-5][0-9]{2})$"},
           "`success`, `error` or an HTTP status 100–599; empty is absent"),
    _query("cache", {"type": "string", "pattern": "^(|[Hh][Ii][Tt]|[Mm][Ii][Ss][Ss])$"},
           "`hit` or `miss` (any case); empty is absent"),
    _query("since", TIME, "started at or after (ISO 8601 or unix seconds)"),
    _query("until", TIME, "started before (ISO 8601 or unix seconds)"),
]  # fmt: skip
VERSION = {"name": "version", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^(latest|[0-9]+)$", "maxLength": 32},
           "description": "`latest` or a version number in ASCII digits"}  # fmt: skip
READ_ERRORS = (("400", "invalid query parameter"), ("401", "missing or invalid API key"),
               ("403", "not allowed for this key (a member naming another workspace, or an"
                       " admin route)"),
               ("404", "not found"), ("503", "store unavailable"))  # fmt: skip
WORKSPACE_ID_PATTERN = f"^{WORKSPACE_ID.pattern}$"
WORKSPACE = {"name": "x-imagegate-workspace", "in": "header", "required": False,
             "schema": {"type": "string", "pattern": WORKSPACE_ID_PATTERN},
             "description": "act in this workspace (admin keys; a member key may only name its"
                            " own, 403 otherwise); malformed is a 404"}  # fmt: skip
USAGE_PARAMS = [
    _query("group_by", {"type": "string", "enum": ["key", "identity", "model"],
                        "default": "key"}, "what one row sums over"),
    _query("from", TIME, "traces started at or after (ISO 8601 or unix seconds)"),
    _query("to", TIME, "traces started before (ISO 8601 or unix seconds)"),
]  # fmt: skip


def _control(
    summary: str,
    ok: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    status: str = "200",
    workspace: bool = True,
) -> dict[str, Any]:
    """A control-plane or admin operation; ``workspace``: it reads ``x-imagegate-workspace``."""
    errors = READ_ERRORS if body is None else (*READ_ERRORS, ("409", "the id is taken"),
                                              ("413", "body too large"))  # fmt: skip
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


def control_paths() -> dict[str, Any]:
    """The read API, prompts, signed files and metrics, with every parameter the handlers read."""
    trace_id = _path_id("trace_id", "trace")
    prompt_id = _path_id("prompt_id", "prompt")
    image = {"schema": {"type": "string", "format": "binary"}}
    return {
        "/v2/traces": {"get": _control("List traces, newest first", ref("TraceList"),
                                       params=TRACE_FILTERS)},
        "/v2/traces/{trace_id}": {"get": _control("One trace", ref("Trace"),
                                                  params=[trace_id])},
        "/v2/identities": {"get": _control("List identities", ref("IdentityList"),
                                           params=[LIMIT, CURSOR])},
        "/v2/identities/{identity_id}": {
            "get": _control("One identity with its totals", ref("Identity"),
                            params=[_path_id("identity_id", "identity")]),
        },
        "/v2/threads/{thread_id}": {
            "get": _control("One thread and its traces", ref("Thread"),
                            params=[_path_id("thread_id", "thread")]),
        },
        "/v2/prompts": {
            "get": _control("List prompts", ref("PromptList"), params=[LIMIT, CURSOR]),
            "post": _control("Create a prompt (and its version 1)", ref("Prompt"),
                             body="PromptCreateBody", status="201"),
        },
        "/v2/prompts/{prompt_id}": {
            "get": _control("One prompt with its versions", ref("Prompt"), params=[prompt_id]),
        },
        "/v2/prompts/{prompt_id}/versions": {
            "get": _control("A prompt's versions", ref("PromptVersionList"),
                            params=[prompt_id]),
            "post": _control("Add a version", ref("PromptVersion"), params=[prompt_id],
                             body="PromptVersionBody", status="201"),
        },
        "/v2/prompts/{prompt_id}/versions/{version}": {
            "get": _control("One version", ref("PromptVersion"), params=[prompt_id, VERSION]),
        },
        "/v2/usage": {
            "get": _control("Requests, images and cost of the workspace, grouped",
                            ref("Usage"), params=USAGE_PARAMS),
        },
        **admin_paths(),
        "/v2/files/{key}": {
            "get": {
                "summary": "A stored image, for whoever holds its signed URL (no API key)",
                "security": [],
                "parameters": [
                    {"name": "key", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                     "description": "SHA-256 of the bytes, 64 lowercase hex digits"},
                    _query("expires", {"type": "string", "pattern": "^[0-9]{1,12}$"},
                           "unix seconds the URL stops working; missing is a 403"),
                    _query("sig", {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                           "HMAC-SHA256 of key and expires; missing or wrong is a 403"),
                ],
                "responses": {
                    "200": {"description": "the image",
                            "content": {m: image for m in ("image/png", "image/jpeg",
                                                           "image/webp",
                                                           "application/octet-stream")}},
                    "304": {"description": "not modified (If-None-Match)"},
                    **error_responses(("400", "malformed expires or sig"),
                              ("403", "missing, invalid or expired signature"),
                              ("404", "no such file"), ("503", "image store unavailable")),
                },
            },
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of the whole process (admin keys only)",
                "security": [{"ApiKey": []}],
                "responses": {
                    "200": {"description": "Prometheus text",
                            "content": {"text/plain": {"schema": {"type": "string"}}}},
                    **error_responses(("401", "missing or invalid API key"),
                              ("403", "not an admin key"),
                              ("404", "a malformed workspace header")),
                },
            },
        },
    }  # fmt: skip


def admin_paths() -> dict[str, Any]:
    """Workspaces and managed keys: admin keys only, so no workspace header."""
    ws_id = {"name": "workspace_id", "in": "path", "required": True,
             "schema": {"type": "string", "pattern": WORKSPACE_ID_PATTERN},
             "description": "the workspace id; one that cannot exist is a 404"}  # fmt: skip
    key_id = _path_id("key_id", "key")
    in_ws = _query("workspace", {"type": "string", "pattern": f"^(|{WORKSPACE_ID_PATTERN[1:-1]})$"},
                   "only this workspace's keys; empty is absent")  # fmt: skip

    def admin(summary: str, ok: str, **kw: Any) -> dict[str, Any]:
        return _control(summary, ref(ok), workspace=False, **kw)

    return {
        "/v2/admin/workspaces": {
            "get": admin("List workspaces", "WorkspaceList"),
            "post": admin("Create a workspace", "Workspace", body="WorkspaceCreate",
                          status="201"),
        },
        "/v2/admin/workspaces/{workspace_id}": {
            "get": admin("One workspace", "Workspace", params=[ws_id]),
            "patch": admin("Change a workspace's name, limits or budgets", "Workspace",
                           params=[ws_id], body="WorkspacePatch"),
        },
        "/v2/admin/keys": {
            "get": admin("List managed keys (prefix only, never the key)", "ApiKeyList",
                         params=[in_ws]),
            "post": admin("Create a key; the answer is the only time it is shown",
                          "ApiKeyCreated", body="KeyCreate", status="201"),
        },
        "/v2/admin/keys/{key_id}": {"get": admin("One managed key", "ApiKey", params=[key_id])},
        "/v2/admin/keys/{key_id}/revoke": {
            "post": admin("Revoke a key: refused from its next request on", "ApiKey",
                          params=[key_id]),
        },
    }  # fmt: skip
