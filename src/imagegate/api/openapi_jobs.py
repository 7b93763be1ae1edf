"""The job routes in ``/openapi.json`` (``api/jobs.py``); ``openapi.py`` adds them."""

from __future__ import annotations

from typing import Any

from .openapi_common import IDEMPOTENCY_ERRORS, IDEMPOTENCY_KEY, error_responses, list_of, ref

_TIME = {"type": ["string", "null"], "format": "date-time"}
_STR = {"type": ["string", "null"]}
STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]

JOB_RUN = {
    "type": "object",
    "description": "One run of the job; a second one means the first worker's lease lapsed",
    "properties": {
        "run": {"type": "integer"},
        "worker": {"type": "string"},
        "trace_id": {"type": "string"},
        "started_at": _TIME,
        "ended_at": _TIME,
        "outcome": {
            "type": ["string", "null"],
            "enum": ["succeeded", "failed", "cancelled", "lost", "interrupted", None],
        },
    },
}
WEBHOOK = {
    "type": ["object", "null"],
    "properties": {
        "url": {"type": "string"},
        "secret_id": {"type": "string"},
        "message_id": _STR,
        "status": {"enum": ["waiting", "pending", "delivered", "failed"]},
        "next_attempt_at": _TIME,
        "deliveries": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "attempt": {"type": "integer"},
                    "at": _TIME,
                    "status_code": {"type": ["integer", "null"]},
                    "error": _STR,
                    "duration_ms": {"type": "number"},
                },
            },
        },
    },
}
JOB = {
    "type": "object",
    "required": ["id", "object", "status", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "image.job"},
        "status": {"enum": STATUSES},
        "operation": {"type": "string"},
        "model": _STR,
        "response_format": _STR,
        "created_at": _TIME,
        "started_at": _TIME,
        "finished_at": _TIME,
        "http_status": {"type": ["integer", "null"]},
        "trace_id": _STR,
        "runs": {"type": "array", "items": ref("JobRun")},
        "result": {"anyOf": [ref("ImagesResponse"), {"type": "null"}]},
        "error": {"anyOf": [ref("Error"), {"type": "null"}]},
        "webhook": ref("JobWebhook"),
    },
}
JOB_SCHEMAS = {"Job": JOB, "JobRun": JOB_RUN, "JobWebhook": WEBHOOK, "JobList": list_of("Job")}


def _submit(summary: str, content_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": "The body of the image route, plus `orq.webhook: {url, secret_id?}`.",
        "security": [{"ApiKey": []}],
        "parameters": [IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {content_type: {"schema": schema}}},
        "responses": {
            "202": {
                "description": "queued",
                "content": {"application/json": {"schema": ref("Job")}},
            },
            **error_responses(
                ("400", "invalid body, or a webhook URL or secret that is refused"),
                ("401", "missing or invalid API key"),
                ("413", "file or body too large"),
                *IDEMPOTENCY_ERRORS,
                ("429", "the workspace's job queue is full"),
                ("503", "store unavailable"),
            ),
        },
    }


def job_paths(gen: dict[str, Any], edit: dict[str, Any], var: dict[str, Any]) -> dict[str, Any]:
    """``gen``/``edit``/``var``: the request schemas of the image routes."""
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
    query = [
        {"name": "status", "in": "query", "schema": {"enum": STATUSES}},
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
        },
        {
            "name": "after",
            "in": "query",
            "schema": {"type": "string"},
            "description": "next_cursor of the previous page",
        },
    ]
    missing = error_responses(
        ("401", "missing or invalid API key"), ("404", "no such job in this workspace")
    )

    def one(summary: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "summary": summary,
            "security": [{"ApiKey": []}],
            "parameters": [job_id],
            "responses": {
                "200": {
                    "description": "the job",
                    "content": {"application/json": {"schema": ref("Job")}},
                },
                **missing,
                **(extra or {}),
            },
        }

    return {
        "/v2/jobs/images/generations": {
            "post": _submit("Queue an image generation", "application/json", gen)
        },
        "/v2/jobs/images/edits": {
            "post": _submit("Queue an image edit", "multipart/form-data", edit)
        },
        "/v2/jobs/images/variations": {
            "post": _submit("Queue image variations", "multipart/form-data", var)
        },
        "/v2/jobs": {
            "get": {
                "summary": "List the workspace's jobs, newest first",
                "security": [{"ApiKey": []}],
                "parameters": query,
                "responses": {
                    "200": {
                        "description": "jobs",
                        "content": {"application/json": {"schema": ref("JobList")}},
                    },
                    **error_responses(
                        ("400", "a bad query parameter"), ("401", "missing or invalid API key")
                    ),
                },
            }
        },
        "/v2/jobs/{job_id}": {
            "get": one("One job: its state, runs, answer or error, webhook deliveries"),
            "delete": one(
                "Cancel a queued or running job",
                error_responses(("409", "the job had already finished")),
            ),
        },
    }
