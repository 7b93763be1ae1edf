"""The model routes of ``/openapi.json``: ``GET {prefix}/models`` and one model, with the
``Model`` schema they answer (``api/models_list.py``)."""

from __future__ import annotations

from typing import Any

from .openapi_common import error_responses, ref

# OpenAI's model object (https://platform.openai.com/docs/api-reference/models/object) and our
# fields beside it (api/models_list.py, catalog.py).
MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string", "description": "the provider, or imagegate for aliases"},
        "kind": {"enum": ["model", "alias"]},
        "operations": {"type": "array", "items": {"type": "string"}},
        "output_formats": {"type": "array", "items": {"type": "string"}},
        "models": {"type": "array", "items": {"type": "string"}, "description": "alias targets"},
        "strategy": {"enum": ["load_balance", "fallback"]},
        "params": {"type": "object", "description": "parameters the alias pins"},
        "resolves_to": {"type": "string", "description": "a bare name's provider/model"},
    },
}


def model_paths(prefix: str) -> dict[str, Any]:
    """``GET {prefix}/models`` and ``GET {prefix}/models/{model}`` (the id may hold ``/``)."""
    errors = error_responses(("401", "missing or invalid API key"), ("404", "unknown model"))
    listing = {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": ref("Model")},
        },
    }
    one = {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        f"{prefix}/models": {
            "get": {
                "summary": "List the aliases and provider models this gateway serves",
                "security": [{"ApiKey": []}],
                "responses": {
                    "200": {
                        "description": "models",
                        "content": {"application/json": {"schema": listing}},
                    },
                    **errors,
                },
            }
        },
        f"{prefix}/models/{{model}}": {
            "get": {
                "summary": "One model or alias (bare names resolve through default_provider)",
                "security": [{"ApiKey": []}],
                "parameters": [one],
                "responses": {
                    "200": {
                        "description": "the model",
                        "content": {"application/json": {"schema": ref("Model")}},
                    },
                    **errors,
                },
            }
        },
    }
