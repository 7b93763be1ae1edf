"""``GET /openapi.json``: every route and body, built from the pydantic models (the image routes
here; the control plane, files and metrics in ``openapi_control.py``, admin in ``openapi_admin.py``,
models in ``openapi_models.py``, jobs in ``openapi_jobs.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..models import (
    CreateImageEditRequestBody,
    CreateImageRequestBody,
    CreateImageVariationRequestBody,
)
from .admin import KeyCreate, WorkspaceCreate, WorkspacePatch
from .openapi_common import IDEMPOTENCY_ERRORS, IDEMPOTENCY_KEY, error_responses, list_of, ref
from .openapi_control import control_paths
from .openapi_jobs import JOB_SCHEMAS, job_paths
from .openapi_models import MODEL, model_paths
from .openapi_shapes import (
    API_KEY,
    API_KEY_CREATED,
    HEALTH,
    IDENTITY,
    PROMPT,
    PROMPT_VERSION,
    THREAD,
    TRACE,
    USAGE,
    WORKSPACE_SCHEMA,
)
from .prompts import PromptCreateBody, PromptVersionBody

PREFIXES = ("/v2/router", "/v3/router", "/v2/gateway", "/v2/proxy", "/v1")
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
                "failures": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
IMAGES_RESPONSE = {
    "type": "object",
    "required": ["created", "data"],
    "properties": {
        "created": {"type": "integer"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string"},
                    "b64_json": {"type": "string"},
                    "revised_prompt": {"type": ["string", "null"]},
                },
            },
        },
        "usage": {"type": "object"},
    },
}
FILE_PROPS: dict[str, Any] = {
    "image": {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "minItems": 1,
        "maxItems": 16,
    },
    "mask": {"type": "string", "format": "binary"},
}
# Multipart parts the server reads as JSON, so clients (and the fuzzer) send them as JSON.
JSON_PARTS = (
    "orq",
    "retry",
    "cache",
    "load_balancer",
    "timeout",
    "fallbacks",
    "fallback_on_codes",
    "metadata",
    "identity",
    "contact",
    "thread",
)
RAW_CONSTRAINTS = {
    "ge": "minimum",
    "le": "maximum",
    "gt": "exclusiveMinimum",
    "lt": "exclusiveMaximum",
}
TRACE_HEADER = {
    "x-orq-trace-id": {
        "description": "the request's trace id (a ULID)",
        "required": True,
        "schema": {"type": "string", "minLength": 26, "maxLength": 26},
    },
}
_COUNT = {"type": "string", "pattern": "^[0-9]{1,20}$"}
_RESET = {"type": "string", "pattern": "^([0-9]+h)?([0-9]+m)?[0-9]+(\\.[0-9]+)?(ms|s)$"}
# OpenAI's names; present when the caller's key or identity has rate limits.
RATE_HEADERS: dict[str, Any] = {
    f"x-ratelimit-{what}-{unit}": {"description": desc, "required": False, "schema": schema}
    for unit in ("requests", "images")
    for what, desc, schema in (
        ("limit", f"{unit} allowed per minute", _COUNT),
        ("remaining", f"{unit} left in the current minute", _COUNT),
        ("reset", "until the window frees up, like `6s` or `1m0s`", _RESET),
    )
}
IMAGE_HEADERS = {**TRACE_HEADER, **RATE_HEADERS}
RETRY_AFTER = {
    "Retry-After": {
        "description": "whole seconds to wait before trying again",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}


def _json_schema(node: Any) -> Any:
    """pydantic sometimes leaves raw ``ge``/``le`` (bounds after a BeforeValidator); JSON
    Schema and every client generator only know ``minimum``/``maximum``."""
    if isinstance(node, dict):
        return {RAW_CONSTRAINTS.get(k, k): _json_schema(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    return node


def _model_schema(model: Any) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return dict(_json_schema(schema))


def _multipart_schema(model: Any, files: dict[str, Any]) -> dict[str, Any]:
    schema = _model_schema(model)
    schema.pop("$defs", None)
    schema["properties"] = {**schema.get("properties", {}), **files}
    schema["required"] = [*schema.get("required", []), "image"]  # the server's 400 says so too
    return schema


def _defs(*models: Any) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in models:
        schema = _model_schema(model)
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    for name in ("PublicIdentity", "PublicContact"):  # a before-validator takes one object too
        metadata = defs.get(name, {}).get("properties", {}).get("metadata")
        if metadata is not None and "anyOf" in metadata:
            one = {"type": "object", "additionalProperties": True}
            metadata["anyOf"] = [*metadata["anyOf"][:-1], one, metadata["anyOf"][-1]]
    return defs


def _operation(summary: str, content_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if content_type == "application/json":
        media["example"] = {
            "model": "placeholder/sketch",
            "prompt": "a fox",
            "size": "32x32",
            "response_format": "b64_json",
        }
    else:
        props = schema.get("properties", {})
        media["encoding"] = {
            name: {"contentType": "application/json"} for name in JSON_PARTS if name in props
        }
    return {
        "summary": summary,
        "security": [{"ApiKey": []}],
        "parameters": [IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {content_type: media}},
        "responses": {
            "200": {
                "description": "images",
                "headers": IMAGE_HEADERS,
                "content": {"application/json": {"schema": ref("ImagesResponse")}},
            },
            **error_responses(
                ("400", "invalid request"),
                ("401", "missing or invalid API key"),
                ("403", "a member key naming another workspace"),
                ("404", "a malformed workspace header"),
                ("413", "file or body too large"),
                *IDEMPOTENCY_ERRORS,
                ("502", "provider error"),
                ("504", "provider timeout"),
                headers=IMAGE_HEADERS,
            ),
            **error_responses(
                (
                    "429",
                    "`rate_limit_exceeded` (the key's or identity's rate limits),"
                    " `budget_exceeded` (a workspace, key or identity budget), or the"
                    " provider's own 429",
                ),
                ("503", "image store or admission unavailable"),
                headers={**IMAGE_HEADERS, **RETRY_AFTER},
            ),
        },
    }


# The answer to ``stream: true``: Server-Sent Events (OpenAI's image streaming events).
STREAM_EVENTS = {
    "schema": {
        "type": "string",
        "description": "image_generation.* / image_edit.*"
        " partial_image and completed events, or an error event",
    }
}


def build_openapi(extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    defs = _defs(
        CreateImageRequestBody,
        CreateImageEditRequestBody,
        CreateImageVariationRequestBody,
        PromptCreateBody,
        PromptVersionBody,
        WorkspaceCreate,
        WorkspacePatch,
        KeyCreate,
    )
    defs.update(
        Usage=USAGE,
        Workspace=WORKSPACE_SCHEMA,
        WorkspaceList=list_of("Workspace"),
        ApiKey=API_KEY,
        ApiKeyList=list_of("ApiKey"),
        ApiKeyCreated=API_KEY_CREATED,
    )
    defs.update(
        Error=ERROR_SCHEMA,
        ImagesResponse=IMAGES_RESPONSE,
        Health=HEALTH,
        Trace=TRACE,
        Model=MODEL,
        Identity=IDENTITY,
        Thread=THREAD,
        Prompt=PROMPT,
        PromptVersion=PROMPT_VERSION,
        TraceList=list_of("Trace"),
        IdentityList=list_of("Identity"),
        PromptList=list_of("Prompt"),
        PromptVersionList=list_of("PromptVersion"),
    )
    gen = ref("CreateImageRequestBody")
    edit = _multipart_schema(CreateImageEditRequestBody, FILE_PROPS)
    one_file = {"image": {"type": "string", "format": "binary"}}
    var = _multipart_schema(CreateImageVariationRequestBody, one_file)
    paths: dict[str, Any] = {}
    for prefix in PREFIXES:
        paths[f"{prefix}/images/generations"] = {
            "post": _operation("Create images from a prompt", "application/json", gen)
        }
        paths[f"{prefix}/images/edits"] = {
            "post": _operation("Edit images", "multipart/form-data", edit)
        }
        paths[f"{prefix}/images/variations"] = {
            "post": _operation("Create variations of an image", "multipart/form-data", var)
        }
        for op in ("generations", "edits"):  # ``stream: true`` answers events (docs/api.md)
            answer = paths[f"{prefix}/images/{op}"]["post"]["responses"]["200"]
            answer["content"] = {**answer["content"], "text/event-stream": STREAM_EVENTS}
        paths.update(model_paths(prefix))
    paths["/health"] = {
        "get": {
            "summary": "Liveness",
            "security": [],
            "responses": {
                "200": {
                    "description": "ok",
                    "content": {"application/json": {"schema": ref("Health")}},
                },
            },
        }
    }
    paths.update(control_paths())
    paths.update(job_paths(gen, edit, var))
    defs.update(JOB_SCHEMAS)
    for path, item in (extra_paths or {}).items():  # never replaces what is described above
        for method, operation in item.items():
            paths.setdefault(path, {}).setdefault(method, operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imagegate",
            "version": "0.1.0",
            "description": "Self-hosted image gateway speaking orq.ai's router API",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"ApiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


def route_paths(routes: Iterable[Any]) -> dict[str, Any]:
    """A plain description of every other route (control plane, files...), so ``/openapi.json``
    lists every route even when its module brings no schema: path parameters, JSON in and out,
    orq's error body."""
    paths: dict[str, Any] = {}
    for route in routes:
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None) or ()
        if not isinstance(path, str) or path == "/openapi.json":
            continue
        endpoint = getattr(route, "endpoint", None)
        name = getattr(endpoint, "__name__", "") or path
        doc = (getattr(endpoint, "__doc__", None) or "").strip().splitlines()
        summary = doc[0] if doc else name.replace("_", " ").strip().capitalize()
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in re.findall(r"{(\w+)(?::\w+)?}", path)
        ]
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for method in sorted(m.lower() for m in methods if m != "HEAD"):
            operation: dict[str, Any] = {
                "summary": summary,
                "responses": {
                    "200": {"description": "ok"},
                    "default": {"description": "error", "content": error},
                },
            }
            if params:
                operation["parameters"] = params
            if method in ("post", "put", "patch"):
                body = {"application/json": {"schema": {"type": "object"}}}
                operation["requestBody"] = {"required": True, "content": body}
            paths.setdefault(path, {})[method] = operation
    return paths
