"""The control plane, files and metrics routes of ``/openapi.json`` (the image routes and
the document itself are built in ``openapi.py``, the admin routes in ``openapi_admin.py``)."""

from __future__ import annotations

from typing import Any

from .openapi_admin import admin_paths
from .openapi_common import (
    control_op,
    error_responses,
    path_id,
    query_param,
    ref,
    text_schema,
)
from .params import MAX_ID_CHARS, MAX_TIME_CHARS

LIMIT = query_param(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
    "page size, 1–500 in ASCII digits",
)
CURSOR = query_param("cursor", text_schema(MAX_ID_CHARS), "`next_cursor` of the previous page")
TIME = {
    "type": "string",
    "maxLength": MAX_TIME_CHARS,
    "pattern": "^(|[0-9]{1,12}(\\.[0-9]{1,9})?|[0-9]{4}-[0-9]{2}-[0-9]{2}"
    "([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,6})?)?"
    "([Zz]|[+-][0-9]{2}:[0-9]{2})?)?)$",
}
TRACE_FILTERS = [
    LIMIT,
    CURSOR,
    query_param("identity_id", text_schema(), "only traces of this identity"),
    query_param("thread_id", text_schema(), "only traces of this thread"),
    query_param("name", text_schema(), "only traces with this name"),
    query_param("model", text_schema(), "requested or served model"),
    query_param(
        "status",
        {"type": "string", "pattern": "^(|success|error|[1-5][0-9]{2})$"},
        "`success`, `error` or an HTTP status 100–599; empty is absent",
    ),
    query_param(
        "cache",
        {"type": "string", "pattern": "^(|[Hh][Ii][Tt]|[Mm][Ii][Ss][Ss])$"},
        "`hit` or `miss` (any case); empty is absent",
    ),
    query_param("since", TIME, "started at or after (ISO 8601 or unix seconds)"),
    query_param("until", TIME, "started before (ISO 8601 or unix seconds)"),
]
VERSION = {
    "name": "version",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^(latest|[0-9]+)$", "maxLength": 32},
    "description": "`latest` or a version number in ASCII digits",
}
USAGE_PARAMS = [
    query_param(
        "group_by",
        {"type": "string", "enum": ["key", "identity", "model"], "default": "key"},
        "what one row sums over",
    ),
    query_param("from", TIME, "traces started at or after (ISO 8601 or unix seconds)"),
    query_param("to", TIME, "traces started before (ISO 8601 or unix seconds)"),
]


def control_paths() -> dict[str, Any]:
    """The read API, prompts, signed files and metrics, with every parameter the handlers read."""
    trace_id = path_id("trace_id", "trace")
    prompt_id = path_id("prompt_id", "prompt")
    image = {"schema": {"type": "string", "format": "binary"}}
    return {
        "/v2/traces": {
            "get": control_op("List traces, newest first", ref("TraceList"), params=TRACE_FILTERS)
        },
        "/v2/traces/{trace_id}": {"get": control_op("One trace", ref("Trace"), params=[trace_id])},
        "/v2/identities": {
            "get": control_op("List identities", ref("IdentityList"), params=[LIMIT, CURSOR])
        },
        "/v2/identities/{identity_id}": {
            "get": control_op(
                "One identity with its totals",
                ref("Identity"),
                params=[path_id("identity_id", "identity")],
            ),
        },
        "/v2/threads/{thread_id}": {
            "get": control_op(
                "One thread and its traces", ref("Thread"), params=[path_id("thread_id", "thread")]
            ),
        },
        "/v2/prompts": {
            "get": control_op("List prompts", ref("PromptList"), params=[LIMIT, CURSOR]),
            "post": control_op(
                "Create a prompt (and its version 1)",
                ref("Prompt"),
                body="PromptCreateBody",
                status="201",
            ),
        },
        "/v2/prompts/{prompt_id}": {
            "get": control_op("One prompt with its versions", ref("Prompt"), params=[prompt_id]),
        },
        "/v2/prompts/{prompt_id}/versions": {
            "get": control_op("A prompt's versions", ref("PromptVersionList"), params=[prompt_id]),
            "post": control_op(
                "Add a version",
                ref("PromptVersion"),
                params=[prompt_id],
                body="PromptVersionBody",
                status="201",
            ),
        },
        "/v2/prompts/{prompt_id}/versions/{version}": {
            "get": control_op("One version", ref("PromptVersion"), params=[prompt_id, VERSION]),
        },
        "/v2/usage": {
            "get": control_op(
                "Requests, images and cost of the workspace, grouped",
                ref("Usage"),
                params=USAGE_PARAMS,
            ),
        },
        **admin_paths(),
        "/v2/files/{key}": {
            "get": {
                "summary": "A stored image, for whoever holds its signed URL (no API key)",
                "security": [],
                "parameters": [
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "description": "SHA-256 of the bytes, 64 lowercase hex digits",
                    },
                    query_param(
                        "expires",
                        {"type": "string", "pattern": "^[0-9]{1,12}$"},
                        "unix seconds the URL stops working; missing is a 403",
                    ),
                    query_param(
                        "sig",
                        {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                        "HMAC-SHA256 of key and expires; missing or wrong is a 403",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "the image",
                        "content": {
                            m: image
                            for m in (
                                "image/png",
                                "image/jpeg",
                                "image/webp",
                                "application/octet-stream",
                            )
                        },
                    },
                    "304": {"description": "not modified (If-None-Match)"},
                    **error_responses(
                        ("400", "malformed expires or sig"),
                        ("403", "missing, invalid or expired signature"),
                        ("404", "no such file"),
                        ("503", "image store unavailable"),
                    ),
                },
            },
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of the whole process (admin keys only)",
                "security": [{"ApiKey": []}],
                "responses": {
                    "200": {
                        "description": "Prometheus text",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **error_responses(
                        ("401", "missing or invalid API key"),
                        ("403", "not an admin key"),
                        ("404", "a malformed workspace header"),
                    ),
                },
            },
        },
    }
