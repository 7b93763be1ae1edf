"""The job API: submit an image call and come back for it (docs/long-calls.md).

``POST /v2/jobs/images/{generations,edits,variations}`` takes the bodies of the image routes
(multipart included, the same ``orq`` options, plus ``orq.webhook``), checks them as those
routes do and answers ``202`` with the queued job at once; with an ``Idempotency-Key`` the
same key and body answer the same job again (``jobs/once.py``). ``GET /v2/jobs/{id}``
answers the job (its images answer once it succeeded, or orq's error body),
``DELETE /v2/jobs/{id}`` cancels it, ``GET /v2/jobs`` lists the workspace's jobs, newest
first. Another workspace's job is a 404, exactly like a missing one, and so is a job deleted
after ``jobs.retention_s`` (``jobs/retention.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..control import ControlPlane
from ..errors import GatewayError, InternalError, NotFound, ServiceUnavailable
from ..gateway import CallContext, Gateway
from ..idempotency.keys import Scope
from ..jobs.once import job_fingerprint, submit_once
from ..request import OPERATIONS, ImageRequest, Operation
from ..store import StoreUnavailable
from ..store.jobrecords import JOB_STATUSES
from ..telemetry.trace import new_trace_id
from ..workspaces import Principal
from .accesslog import CALL_STATE
from .auth import caller
from .control import guarded
from .idempotency import REPLAYED, idempotency_key
from .images import CLIENT_CLOSED, base_url, header_identity, read_request
from .params import MAX_ID_CHARS, path_id, query_choice, query_int, query_text
from .responses import JSONResponse, error_response

log = logging.getLogger("imagegate.api")
MAX_LIMIT = 100  # a page of jobs (each view carries its runs)


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def make_submit(operation: Operation) -> Any:
    async def endpoint(request: Request) -> Response:
        gateway = _gateway(request)
        image_request: ImageRequest | None = None
        try:
            principal = await caller(request)
            ctx = CallContext(
                trace_id=new_trace_id(),
                api_key_id=principal.key_id,
                header_identity_id=header_identity(request, gateway.config.limits),
                base_url=base_url(request, gateway.config.public_url),
                principal=principal,
            )
            setattr(request.state, CALL_STATE, ctx)
            key = idempotency_key(request)  # checked before the body: a bad key costs no upload
            image_request = await read_request(request, operation, gateway)
            submitted = image_request

            async def submit() -> tuple[dict[str, Any], dict[str, str]]:
                job = await gateway.jobs.submit(submitted, ctx)
                view = await gateway.jobs.view(job, None, ctx.base_url)
                return view, {"location": f"/v2/jobs/{job.id}"}

            if key is None:
                view, headers = await submit()
                return JSONResponse(view, status_code=202, headers=headers)
            scope = Scope(ctx.workspace_id, key)  # one job per key (jobs/once.py)
            fp = await job_fingerprint(image_request, ctx.workspace_id)
            answer = await submit_once(
                request.app.state.idempotency, scope, fp, ctx.trace_id, submit
            )
            headers = {**answer.headers, **({REPLAYED: "true"} if answer.replayed else {})}
            return Response(
                answer.body,
                status_code=answer.status,
                headers=headers,
                media_type="application/json",
            )
        except GatewayError as exc:
            return error_response(exc, new_trace_id())
        except StoreUnavailable:
            return error_response(ServiceUnavailable("the store is unavailable; try again"))
        except ClientDisconnect:
            return Response(status_code=CLIENT_CLOSED)
        except Exception:
            log.exception("unhandled error submitting a job")
            return error_response(InternalError("internal error; see the gateway log"))
        finally:
            if image_request is not None:
                image_request.discard_files()  # the job keeps its own copies (blob store)

    endpoint.__name__ = f"jobs_images_{operation}"
    return endpoint


def _job_id(request: Request) -> str:
    return path_id(request.path_params, "job_id", what="job")


async def get_job(request: Request, control: ControlPlane, who: Principal) -> Response:
    gateway = _gateway(request)
    job_id = _job_id(request)
    found = await gateway.jobs.get(who.workspace_id, job_id)
    if found is None:
        raise NotFound(f"job {job_id!r} not found", param="id")
    job, delivery = found
    base = base_url(request, gateway.config.public_url)
    return JSONResponse(await gateway.jobs.view(job, delivery, base))


async def cancel_job(request: Request, control: ControlPlane, who: Principal) -> Response:
    gateway = _gateway(request)
    job_id = _job_id(request)
    job = await gateway.jobs.cancel(who.workspace_id, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found", param="id")
    base = base_url(request, gateway.config.public_url)
    return JSONResponse(await gateway.jobs.view(job, None, base))


async def list_jobs(request: Request, control: ControlPlane, who: Principal) -> Response:
    from ..jobs.views import summary_view

    q = request.query_params
    status = query_choice(q, "status", JOB_STATUSES)
    limit = query_int(q, "limit", lo=1, hi=MAX_LIMIT, default=20)
    after = query_text(q, "after", MAX_ID_CHARS)
    page = await _gateway(request).store.list_jobs(who.workspace_id, status, after, limit)
    return JSONResponse(
        {
            "object": "list",
            "data": [summary_view(j) for j in page.items],
            "has_more": page.next_cursor is not None,
            "next_cursor": page.next_cursor,
        }
    )


def job_routes() -> list[BaseRoute]:
    """Appended to the app's routes by ``api.app.routes``."""
    out: list[BaseRoute] = [
        Route(f"/v2/jobs/images/{op}", make_submit(op), methods=["POST"]) for op in OPERATIONS
    ]
    out += [
        Route("/v2/jobs", guarded(list_jobs), methods=["GET"]),
        Route("/v2/jobs/{job_id}", guarded(get_job), methods=["GET"]),
        Route("/v2/jobs/{job_id}", guarded(cancel_job), methods=["DELETE"]),
    ]
    return out
