"""``GET /openapi.json``: every route and body, built from the pydantic models."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..models import (
    CreateImageEditRequestBody,
    CreateImageRequestBody,
    CreateImageVariationRequestBody,
)

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
    "image": {"type": "array", "items": {"type": "string", "format": "binary"}, "maxItems": 16},
    "mask": {"type": "string", "format": "binary"},
}


def _multipart_schema(model: Any, files: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema = dict(schema)
    schema.pop("$defs", None)
    schema["properties"] = {**schema.get("properties", {}), **files}
    return schema


def _defs(*models: Any) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    return defs


def _operation(summary: str, content_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    errors = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "summary": summary,
        "security": [{"ApiKey": []}],
        "requestBody": {"required": True, "content": {content_type: {"schema": schema}}},
        "responses": {
            "200": {
                "description": "images",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ImagesResponse"}}
                },
            },
            **{
                code: {"description": desc, "content": errors}
                for code, desc in (
                    ("400", "invalid request"), ("401", "missing or invalid API key"),
                    ("413", "file too large"), ("429", "rate limited upstream"),
                    ("502", "provider error"), ("504", "provider timeout"),
                )
            },  # fmt: skip
        },
    }


def build_openapi(extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    defs = _defs(
        CreateImageRequestBody, CreateImageEditRequestBody, CreateImageVariationRequestBody
    )
    defs["Error"] = ERROR_SCHEMA
    defs["ImagesResponse"] = IMAGES_RESPONSE
    gen = {"$ref": "#/components/schemas/CreateImageRequestBody"}
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
    paths["/health"] = {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}}
    for path, item in (extra_paths or {}).items():  # never replaces what is described above
        for method, operation in item.items():
            paths.setdefault(path, {}).setdefault(method, operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": "imagegate", "version": "0.1.0",
                 "description": "Self-hosted image gateway speaking orq.ai's router API"},
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"ApiKey": {"type": "http", "scheme": "bearer"}},
        },
    }  # fmt: skip


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
                "responses": {"200": {"description": "ok"},
                              "default": {"description": "error", "content": error}},
            }  # fmt: skip
            if params:
                operation["parameters"] = params
            if method in ("post", "put", "patch"):
                body = {"application/json": {"schema": {"type": "object"}}}
                operation["requestBody"] = {"required": True, "content": body}
            paths.setdefault(path, {})[method] = operation
    return paths
