"""What the HTTP edge, the CLI and the library do with jobs: submit, read, list, cancel.

``Gateway.jobs`` is one ``JobService``; ``start`` runs this process's share of the work (the
job runner and the webhook sender), which ``imagegate serve`` does in the app's lifespan and
the library does on its first ``Gateway.submit``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ..errors import GatewayError, InvalidRequest, RateLimited
from ..imaging import check_uploads
from ..limits import check_request
from ..request import ImageRequest
from ..store.jobrecords import Delivery, Job, QueueFull
from ..telemetry.trace import new_trace_id
from ..webhooks.sender import WebhookSender
from ..webhooks.target import parse_webhook
from .inputs import delete_inputs, save_inputs
from .runner import JobRunner
from .views import job_view

if TYPE_CHECKING:
    from ..gateway import CallContext, Gateway

log = logging.getLogger("imagegate.jobs")


class JobNotCancellable(GatewayError):
    status = 409
    code = "job_finished"
    type = "invalid_request_error"


class JobService:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.store = gateway.store
        self.output = gateway.output
        self.runner = JobRunner(self)
        self.sender = WebhookSender(self)
        self._finished: dict[str, asyncio.Event] = {}  # jobs awaited in this process

    def start(self) -> None:
        """Run jobs and deliver webhooks in this process (as configured); idempotent."""
        self.runner.start()
        self.sender.start()

    async def close(self) -> None:
        await self.runner.close()
        await self.sender.close()

    # --- submit ---------------------------------------------------------------------------
    async def submit(self, request: ImageRequest, ctx: CallContext) -> Job:
        """Check ``request`` as the synchronous route would before any work, keep its uploads,
        queue it. 400 for a bad body or webhook, 429 when the workspace's queue is full."""
        config = self.gateway.config
        if getattr(request, "stream", None):
            raise InvalidRequest("a job answers once: stream is not available", param="stream")
        check_request(request, config.limits)
        if request.uploads():  # the pixel caps, from the headers, before anything is kept
            await check_uploads(request.uploads(), config.limits)
        echo = dict(request.echo or {})
        orq = echo.get("orq")
        target = await parse_webhook(
            orq.get("webhook") if isinstance(orq, dict) else None, config, ctx.workspace_id
        )
        body = {**echo, **({"prompt": request.prompt} if request.prompt is not None else {})}
        principal = ctx.principal
        now = time.time()
        job = Job(
            id=f"job_{new_trace_id()}",
            workspace_id=ctx.workspace_id,
            operation=request.operation,
            status="queued",
            body=body,
            inputs=[],
            caller={
                "role": principal.role,
                "key_id": principal.key_id,
                "managed": principal.key is not None,
                "identity_id": ctx.header_identity_id,
                "base_url": ctx.base_url,
            },
            created_at=now,
            updated_at=now,
            webhook_url=target.url if target else None,
            webhook_secret_id=target.secret_id if target else None,
        )
        if request.uploads():
            job.inputs = await save_inputs(self.output.store, job.id, request.uploads())
        try:
            await self.store.insert_job(job, config.jobs.max_queued_per_workspace)
        except QueueFull as exc:
            await delete_inputs(self.output.store, job.inputs)
            raise RateLimited(
                f"job queue full: {exc.message}; try again later", headers={"Retry-After": "1"}
            ) from None
        except BaseException:
            await delete_inputs(self.output.store, job.inputs)
            raise
        self.runner.wake()
        return job

    # --- read, cancel ---------------------------------------------------------------------
    async def get(self, workspace: str, job_id: str) -> tuple[Job, Delivery | None] | None:
        job = await self.store.get_job(workspace, job_id)
        if job is None:
            return None
        delivery = await self.store.get_delivery(workspace, job_id) if job.webhook_url else None
        return job, delivery

    async def view(
        self, job: Job, delivery: Delivery | None, base_url: str, *, want: str | None = None
    ) -> dict[str, Any]:
        return await job_view(self.output, job, delivery, base_url=base_url, want=want)

    async def cancel(self, workspace: str, job_id: str) -> Job | None:
        """The job, cancelled now (409 when it had already finished); None when unknown."""
        found = await self.store.cancel_job(workspace, job_id, time.time())
        if found is None:
            return None
        job, cancelled = found
        if not cancelled:
            raise JobNotCancellable(f"job {job_id} already {job.status}", param="id")
        self.runner.cancel_local(job.id)  # its upstream call too, when it runs here
        await delete_inputs(self.output.store, job.inputs)
        self.finished(job)
        return job

    def finished(self, job: Job) -> None:
        """A job of this process reached its end: wake its waiters and the webhook sender."""
        event = self._finished.pop(job.id, None)
        if event is not None:
            event.set()
        if job.webhook_url is not None:
            self.sender.wake()

    async def wait(self, workspace: str, job_id: str, poll_s: float) -> Job | None:
        """The job once finished (``None``: unknown). Woken at once when this process ends
        it; a job run by another replica is seen at the next look, every ``poll_s``."""
        while True:
            event = self._finished.setdefault(job_id, asyncio.Event())
            job = await self.store.get_job(workspace, job_id)
            if job is None or job.finished:
                self._finished.pop(job_id, None)
                return job
            try:
                await asyncio.wait_for(event.wait(), poll_s)
            except TimeoutError:
                pass
            except asyncio.CancelledError:
                self._finished.pop(job_id, None)  # a later waiter makes a new one
                raise
