"""A job as JSON: what ``GET /v2/jobs/{id}`` answers and what a webhook message carries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..output import Output
from ..store.jobrecords import Delivery, Job
from .results import ResultLost, render_result

OBJECT = "image.job"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _run_view(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "run": run.get("run"),
        "worker": run.get("worker"),
        "trace_id": run.get("trace_id"),
        "started_at": iso(run.get("started_at")),
        "ended_at": iso(run.get("ended_at")),
        "outcome": run.get("outcome"),
    }


def _attempt_view(attempt: dict[str, Any]) -> dict[str, Any]:
    return {**attempt, "at": iso(attempt.get("at"))}


def webhook_view(job: Job, delivery: Delivery | None) -> dict[str, Any] | None:
    if job.webhook_url is None:
        return None
    view: dict[str, Any] = {
        "url": job.webhook_url,
        "secret_id": job.webhook_secret_id,
        "message_id": None,
        "status": "waiting",
        "next_attempt_at": None,
        "deliveries": [],
    }
    if delivery is not None:
        view.update(
            message_id=delivery.id,
            status=delivery.status,
            next_attempt_at=iso(delivery.next_at) if delivery.status == "pending" else None,
            deliveries=[_attempt_view(a) for a in delivery.attempts],
        )
    return view


def summary_view(job: Job) -> dict[str, Any]:
    """What a job list shows: everything but the answer itself."""
    runs = job.run_log
    return {
        "id": job.id,
        "object": OBJECT,
        "status": job.status,
        "operation": job.operation,
        "model": job.body.get("model"),
        "response_format": job.body.get("response_format"),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "http_status": job.http_status,
        "trace_id": runs[-1].get("trace_id") if runs else None,
        "runs": [_run_view(r) for r in runs],
    }


async def job_view(
    output: Output,
    job: Job,
    delivery: Delivery | None,
    *,
    base_url: str,
    want: str | None = None,
    images: bool = True,
) -> dict[str, Any]:
    """The whole job; its images answer as the job asked (``want`` overrides: webhooks ask
    for URLs), base64 rebuilt from the blob store."""
    view = summary_view(job)
    view["result"] = None
    if images and job.result is not None:
        asked = want or job.body.get("response_format")
        try:
            view["result"] = await render_result(output, job.result, asked, base_url)
        except ResultLost:
            view["result"] = None
            view["result_error"] = "an image of this job is gone from the blob store"
    view["error"] = job.error
    view["webhook"] = webhook_view(job, delivery)
    return view
