"""The worker loop every ``imagegate serve`` runs: claim jobs, run them, keep their leases.

Up to ``jobs.workers`` jobs run at once in a process. A claimed job runs through
``Gateway.handle`` exactly like the synchronous route (limits, rate limits, cache, budgets,
routing, traces), under the workspace and key that submitted it. While it runs its lease is
renewed every third of ``jobs.lease_s``; when a renewal finds the job is no longer this run's
(cancelled, or taken over after the lease lapsed) or the lease ran out while the store could
not be reached, the run is cancelled — upstream call included — so one lease never has two
runs upstream at once. A process that dies leaves its jobs to lapse; any replica reruns
them, and the job's ``runs`` and the second trace's notes say so. Beside the claim loop runs
the purge of jobs past ``jobs.retention_s`` (``retention.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any, cast

from ..errors import GatewayError, InternalError, InvalidApiKey
from ..gateway import CallContext
from ..options import build_request
from ..request import Operation, UploadedFile
from ..store import StoreUnavailable
from ..store.jobrecords import Job
from ..telemetry.trace import new_trace_id
from ..workspaces import Principal
from .inputs import InputsLost, delete_inputs, load_inputs
from .results import keep_result
from .retention import purge_loop

if TYPE_CHECKING:
    from .service import JobService

log = logging.getLogger("imagegate.jobs")
FINISH_TRIES = 20  # a finish the store refuses now is retried, at most this many times


def worker_name() -> str:
    """``<host>:<pid>:<random>``; the host as a short hash, so job views and webhook messages
    (which tenants read) tell machines apart without naming them."""
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return f"{host}:{os.getpid()}:{secrets.token_hex(3)}"


def job_error(exc: GatewayError) -> tuple[dict[str, Any], int]:
    return exc.body(), exc.status


class JobRunner:
    def __init__(self, service: JobService) -> None:
        self.service = service
        self.config = service.gateway.config.jobs
        self.owner = worker_name()
        self.running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._purge: asyncio.Task[None] | None = None
        self._closing = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._loop is None and self.config.workers > 0:
            self._loop = asyncio.create_task(self._claim_loop(), name="imagegate-jobs")
            self._purge = asyncio.create_task(purge_loop(self.service), name="imagegate-purge")

    async def close(self) -> None:
        """Stop claiming; cancel the running jobs (upstream calls included) and put them back
        in the queue, so another replica runs them at once (a run cut short here never
        finished upstream). A job that cannot be put back waits for its lease to lapse."""
        self._closing = True
        loops = [t for t in (self._loop, self._purge) if t is not None]
        self._loop = self._purge = None
        tasks = [*loops, *self.running.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def cancel_local(self, job_id: str) -> None:
        """A job cancelled through this process stops at once (others notice at renewal)."""
        task = self.running.get(job_id)
        if task is not None:
            task.cancel()

    # --- claiming -----------------------------------------------------------------------
    def _new_run(self, job: Job) -> dict[str, Any]:
        return {
            "run": job.runs + 1,
            "worker": self.owner,
            "trace_id": new_trace_id(),
            "started_at": time.time(),
            "ended_at": None,
            "outcome": None,
        }

    async def _claim_loop(self) -> None:
        cfg = self.config
        while True:
            self._wake.clear()
            free = cfg.workers - len(self.running)
            claimed: list[Job] = []
            if free > 0:
                try:
                    claimed = await self.service.store.claim_jobs(
                        self.owner,
                        time.time(),
                        cfg.lease_s,
                        free,
                        max_running=cfg.max_running_per_workspace,
                        max_runs=cfg.max_runs,
                        new_run=self._new_run,
                    )
                except StoreUnavailable as exc:
                    log.warning("jobs: cannot claim (store unavailable): %s", exc)
                except Exception:
                    log.exception("jobs: claiming failed")
            for job in claimed:
                task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
                self.running[job.id] = task
                task.add_done_callback(functools.partial(self._done, job.id))
            if claimed and len(claimed) == free:
                await self._wake.wait()  # every slot busy: wait for one to free up
                continue
            with contextlib.suppress(TimeoutError):  # idle: look again now and then
                await asyncio.wait_for(self._wake.wait(), cfg.poll_interval_s)

    def _done(self, job_id: str, _: asyncio.Task[None]) -> None:
        self.running.pop(job_id, None)
        self._wake.set()

    # --- one run ------------------------------------------------------------------------
    async def _run(self, job: Job) -> None:
        this = asyncio.current_task()
        assert this is not None
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lease(job, this, lost))
        run = job.run_log[-1]
        try:
            job.status, job.result, job.error, job.http_status = await self._execute(job, run)
        except asyncio.CancelledError:
            if lost.is_set():
                log.info("job %s: run %d stopped, its lease is not ours any more", job.id, job.runs)
                return
            if self._closing:  # shutting down: back to the queue for another replica
                run.update(ended_at=time.time(), outcome="interrupted")
                with contextlib.suppress(StoreUnavailable):
                    await self.service.store.release_job(job, self.owner, time.time())
            raise  # or a local cancel: the row says so already
        except StoreUnavailable as exc:  # not the job's fault: its lease lapses, it runs again
            log.warning(
                "job %s: run %d stopped, the store is unavailable: %s", job.id, job.runs, exc
            )
            return
        finally:
            keeper.cancel()
        run.update(ended_at=time.time(), outcome=job.status)
        if await self._finish(job):
            await delete_inputs(self.service.output.store, job.inputs)
            self.service.finished(job)

    async def _execute(
        self, job: Job, run: dict[str, Any]
    ) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None, int]:
        gateway = self.service.gateway
        try:
            images: list[UploadedFile] = []
            mask: UploadedFile | None = None
            if job.inputs:
                images, mask = await load_inputs(gateway.output.store, job.id, job.inputs)
            operation = cast(Operation, job.operation)
            request = build_request(operation, job.body, images, mask, gateway.config.limits)
            ctx = CallContext(
                trace_id=run["trace_id"],
                api_key_id=job.caller.get("key_id"),
                header_identity_id=job.caller.get("identity_id"),
                base_url=job.caller.get("base_url") or "",
                principal=await self._principal(job),
            )
            ctx.notes.extend(self._notes(job))
            try:
                response = await gateway.handle(request, ctx)
            finally:
                request.discard_files()
            result = await keep_result(gateway.output, response.body)
            result["served"] = {
                "model": response.model,
                "attempts": response.attempts,
                "cache": response.cache,
            }
            return "succeeded", result, None, 200
        except GatewayError as exc:
            return "failed", None, *job_error(exc)
        except InputsLost as exc:
            err = InternalError(f"the job's uploads are lost: {exc}", code="job_inputs_lost")
            return "failed", None, *job_error(err)
        except StoreUnavailable:
            raise  # not the job's fault: let the lease lapse, it runs again
        except Exception:
            log.exception("job %s: unexpected error", job.id)
            return "failed", None, *job_error(InternalError("internal error; see the gateway log"))

    def _notes(self, job: Job) -> list[str]:
        notes = [f"job {job.id}: run {job.runs}"]
        for earlier in job.run_log[:-1]:
            notes.append(
                f"job {job.id}: run {earlier.get('run')} (trace {earlier.get('trace_id')},"
                f" worker {earlier.get('worker')}) ended {earlier.get('outcome')}: this is a rerun"
            )
        return notes

    async def _principal(self, job: Job) -> Principal:
        """Who submitted the job, as now: a managed key revoked since then fails it."""
        caller = job.caller
        key = None
        if caller.get("managed"):
            key = await self.service.store.get_key(caller["key_id"])
            if key is None or key.revoked:
                raise InvalidApiKey("the API key that submitted this job has been revoked")
        return Principal(job.workspace_id, caller.get("role", "member"), caller.get("key_id"), key)

    async def _keep_lease(self, job: Job, task: asyncio.Task[None], lost: asyncio.Event) -> None:
        every = self.config.lease_s / 3
        while True:
            await asyncio.sleep(every)  # a timer, not a synchronisation point
            try:
                ours = await self.service.store.renew_job(
                    job, self.owner, time.time() + self.config.lease_s
                )
            except StoreUnavailable:
                ours = job.lease_until is not None and time.time() < job.lease_until
            if not ours:
                lost.set()
                task.cancel()
                return

    async def _finish(self, job: Job) -> bool:
        """Record the outcome; False when the run lost the job meanwhile (nothing recorded)."""
        delay = 0.05
        for _ in range(FINISH_TRIES):
            try:
                return await self.service.store.finish_job(job, self.owner, time.time()) is not None
            except StoreUnavailable as exc:
                log.warning("job %s: cannot record its outcome yet: %s", job.id, exc)
            await asyncio.sleep(delay)  # a retry pause (backoff)
            delay = min(delay * 2, 2.0)
        return False
