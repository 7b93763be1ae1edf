"""Jobs from Python, without HTTP: ``Gateway.submit`` and the handle it returns. ::

    async with Gateway(load_config()) as gw:
        job = await gw.submit(model="placeholder/sketch", prompt="a fox",
                              orq={"webhook": {"url": "https://example.com/hooks"}})
        res = await job.result()        # an ImagesResponse, or raises the job's GatewayError
        print(job.id, res.data[0]["url"])

The job is durable like one submitted over HTTP: any replica sharing the database (and the
blob store) may run it, and ``result`` sees it finish wherever it ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import GatewayError
from ..options import build_request
from ..request import Operation, UploadedFile
from ..store.jobrecords import Job

if TYPE_CHECKING:
    from ..gateway import CallContext, Gateway, ImagesResponse


class JobCancelled(GatewayError):
    status = 409
    code = "job_cancelled"
    type = "invalid_request_error"


def error_of(job: Job) -> GatewayError:
    """The job's failure as the exception the synchronous call would have raised."""
    if job.status == "cancelled":
        return JobCancelled(f"job {job.id} was cancelled")
    err = (job.error or {}).get("error") or {}
    out = GatewayError(
        str(err.get("message") or "the job failed"),
        param=err.get("param"),
        code=err.get("code"),
        status=job.http_status or 500,
        failures=err.get("failures"),
    )
    out.type = str(err.get("type") or out.type)
    return out


@dataclass(slots=True)
class JobHandle:
    """A submitted job of ``gateway``: its id, its state, its answer."""

    gateway: Gateway
    id: str
    workspace_id: str
    base_url: str = ""

    async def status(self) -> Job:
        job = await self.gateway.store.get_job(self.workspace_id, self.id)
        if job is None:
            raise GatewayError(f"job {self.id} not found", status=404, code="not_found")
        return job

    async def result(self, *, poll_s: float = 0.5) -> ImagesResponse:
        """The images answer once the job has finished (its ``response_format``); raises
        the job's error (a ``GatewayError``) when it failed or was cancelled."""
        from ..gateway import ImagesResponse

        job = await self.gateway.jobs.wait(self.workspace_id, self.id, poll_s)
        if job is None:
            raise GatewayError(f"job {self.id} not found", status=404, code="not_found")
        if job.status != "succeeded" or job.result is None:
            raise error_of(job)
        view = await self.gateway.jobs.view(job, None, self.base_url)
        served = job.result.get("served") or {}
        return ImagesResponse(
            body=view["result"],
            trace_id=view["trace_id"] or "",
            model=served.get("model"),
            attempts=int(served.get("attempts") or 0),
            cache=served.get("cache"),
        )

    async def cancel(self) -> Job | None:
        return await self.gateway.jobs.cancel(self.workspace_id, self.id)


async def submit(
    gateway: Gateway,
    operation: Operation,
    body: dict[str, Any],
    images: list[UploadedFile],
    mask: UploadedFile | None,
    ctx: CallContext | None = None,
) -> JobHandle:
    from ..gateway import CallContext

    ctx = ctx or CallContext()
    request = build_request(operation, body, images, mask, gateway.config.limits)
    await gateway.start()
    service = gateway.jobs
    service.start()
    job = await service.submit(request, ctx)
    return JobHandle(gateway, job.id, job.workspace_id, ctx.base_url)
