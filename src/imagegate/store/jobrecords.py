"""The plain values of the job queue (``store/jobs.py``) and their rows.

A job keeps its request as the body's fields as sent (``body``: no files, no base64) and its
uploads as blob keys (``inputs``); its answer as blob keys too (``result``), never base64.
``run_log`` has one entry per run (a lost lease makes a second one), so a rerun is visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .driver import Row
from .records import StoreError
from .rows import dumps, loads

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
DeliveryStatus = Literal["pending", "delivered", "failed"]


class QueueFull(StoreError):
    """The workspace already has ``max_queued`` jobs waiting."""


@dataclass(slots=True)
class Job:
    id: str  # job_<ULID>: time-ordered
    workspace_id: str
    operation: str
    status: str
    body: dict[str, Any]  # the request fields as sent (JSON or multipart text fields)
    inputs: list[dict[str, Any]]  # uploads: {field, filename, kind, size, key}
    caller: dict[str, Any]  # {role, key_id, identity_id, base_url}: who submitted, from where
    created_at: float
    updated_at: float
    webhook_url: str | None = None
    webhook_secret_id: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    lease_owner: str | None = None
    lease_until: float | None = None
    runs: int = 0
    run_log: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None  # images by blob key
    error: dict[str, Any] | None = None  # orq's error body
    http_status: int | None = None  # what the synchronous route would have answered

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(slots=True)
class Delivery:
    """The webhook message of one finished job; its id is the ``webhook-id`` of every try."""

    id: str  # msg_<ULID>
    workspace_id: str
    job_id: str
    url: str
    secret_id: str
    status: str  # pending | delivered | failed
    created_at: float
    next_at: float
    lease_owner: str | None = None
    lease_until: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)


JOB_COLUMNS = (
    "id",
    "workspace_id",
    "operation",
    "status",
    "body",
    "inputs",
    "caller",
    "webhook_url",
    "webhook_secret_id",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "lease_owner",
    "lease_until",
    "runs",
    "run_log",
    "result",
    "error",
    "http_status",
)
JOB_JSON = frozenset({"body", "inputs", "caller", "run_log", "result", "error"})
DELIVERY_COLUMNS = (
    "id",
    "workspace_id",
    "job_id",
    "url",
    "secret_id",
    "status",
    "created_at",
    "next_at",
    "lease_owner",
    "lease_until",
    "attempts",
)


def job_row(job: Job) -> tuple[Any, ...]:
    return tuple(dumps(getattr(job, c)) if c in JOB_JSON else getattr(job, c) for c in JOB_COLUMNS)


def job_from_row(row: Row) -> Job:
    values = {c: loads(row[c]) if c in JOB_JSON else row[c] for c in JOB_COLUMNS}
    values["run_log"] = values["run_log"] or []
    return Job(**values)


def delivery_row(delivery: Delivery) -> tuple[Any, ...]:
    return tuple(
        dumps(delivery.attempts) if c == "attempts" else getattr(delivery, c)
        for c in DELIVERY_COLUMNS
    )


def delivery_from_row(row: Row) -> Delivery:
    values = {c: row[c] for c in DELIVERY_COLUMNS}
    values["attempts"] = loads(row["attempts"]) or []
    return Delivery(**values)
