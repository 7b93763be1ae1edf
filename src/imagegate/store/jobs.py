"""The durable job queue, in the same database as everything else (its webhook outbox and
the purge of finished jobs are in ``deliveries.py``).

Claiming is one transaction. On PostgreSQL the candidates are read ``FOR UPDATE SKIP
LOCKED`` (replicas claiming at once take different rows and never wait on each other) and the
per-workspace running count is read under a transaction-scoped advisory lock on the
workspace, so ``max_running`` holds exactly across replicas. On SQLite the transaction is
``BEGIN IMMEDIATE``: the one writer of the file, every process included, so the same SQL is
serial there. A claim sets a lease (``lease_owner``, ``lease_until``, ``runs``); the owner
renews it while it runs, and only the owner of the current run may finish the job. A job
whose lease lapsed (its worker died) is claimed again, one run more, up to ``max_runs``.

Every change of a job to a finished state happens once (a conditional ``UPDATE``), and the
webhook message of a job is inserted in that same transaction: one message per job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .clean import clean
from .deliveries import DeliveryQueries, DeliveryStore
from .driver import Conn
from .jobrecords import JOB_COLUMNS, Job, QueueFull, job_from_row, job_row
from .records import Page
from .rows import dumps

JOBS_LOCK = 0x10B5  # first key of the per-workspace advisory locks (PostgreSQL)
INSERT_JOB = (
    f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' for _ in JOB_COLUMNS)})"
)
FINISH = (
    "UPDATE jobs SET status = ?, result = ?, error = ?, http_status = ?, run_log = ?,"
    " finished_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL"
)
LOST = "lost"  # the outcome of a run whose lease lapsed


class JobStore(DeliveryStore, Protocol):
    """The job queue and the webhook outbox (every method may raise ``StoreUnavailable``)."""

    async def insert_job(self, job: Job, max_queued: int) -> Job:
        """Queue ``job``; ``QueueFull`` when its workspace already has ``max_queued``."""
        ...

    async def get_job(self, workspace: str, job_id: str) -> Job | None: ...

    async def list_jobs(
        self, workspace: str, status: str | None, cursor: str | None, limit: int
    ) -> Page:
        """Newest first; ``cursor`` is the last id of the previous page."""
        ...

    async def claim_jobs(
        self,
        owner: str,
        now: float,
        lease_s: float,
        limit: int,
        *,
        max_running: int,
        max_runs: int,
        new_run: Callable[[Job], dict[str, Any]],
    ) -> list[Job]:
        """Up to ``limit`` jobs now running under ``owner``'s lease; ``new_run(job)`` is the
        run_log entry of each. A lapsed job that had ``max_runs`` runs fails instead."""
        ...

    async def renew_job(self, job: Job, owner: str, until: float) -> bool:
        """Extend the lease of this run; False when it is not ours any more (cancelled,
        finished, or taken over after it lapsed)."""
        ...

    async def finish_job(self, job: Job, owner: str, now: float) -> Job | None:
        """Record ``job``'s outcome (status, result/error, run_log) if this run still owns
        it; None otherwise. Queues its webhook message."""
        ...

    async def release_job(self, job: Job, owner: str, now: float) -> bool:
        """Put this run's job back in the queue at once (a replica shutting down), its
        run_log as given; False when the run no longer owns it."""
        ...

    async def cancel_job(self, workspace: str, job_id: str, now: float) -> tuple[Job, bool] | None:
        """(the job, whether this call cancelled it); None when there is no such job."""
        ...


class JobQueries(DeliveryQueries):
    """``JobStore`` for ``SqlStore`` (a mixin, like ``AccountQueries``); the outbox half,
    ``_queue_message`` included, is ``DeliveryQueries``."""

    async def _lock_workspace(self, conn: Conn, workspace: str) -> None:
        if self._pg:  # SQLite: the transaction already holds the only write lock
            await conn.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", JOBS_LOCK, workspace)

    # --- submit, read, list ----------------------------------------------------------------
    async def insert_job(self, job: Job, max_queued: int) -> Job:
        await self.connect()
        job.workspace_id = clean(job.workspace_id)
        async with self.driver.transaction() as conn:
            await self._lock_workspace(conn, job.workspace_id)
            rows = await conn.fetch(
                "SELECT COUNT(*) AS c FROM jobs WHERE workspace_id = ? AND status = 'queued'",
                job.workspace_id,
            )
            if int(rows[0]["c"]) >= max_queued:
                raise QueueFull(f"workspace has {max_queued} jobs queued already", param=None)
            await conn.execute(INSERT_JOB, *job_row(job))
        return job

    async def get_job(self, workspace: str, job_id: str) -> Job | None:
        rows = await self._fetch(
            "SELECT * FROM jobs WHERE workspace_id = ? AND id = ?", workspace, job_id
        )
        return job_from_row(rows[0]) if rows else None

    async def list_jobs(
        self, workspace: str, status: str | None, cursor: str | None, limit: int
    ) -> Page:
        sql, args = "SELECT * FROM jobs WHERE workspace_id = ?", [workspace]
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        if cursor is not None:
            sql += " AND id < ?"
            args.append(cursor)
        rows = await self._fetch(sql + " ORDER BY id DESC LIMIT ?", *args, limit + 1)
        items = [job_from_row(r) for r in rows[:limit]]
        return Page(items, items[-1].id if len(rows) > limit and items else None)

    # --- claim, renew, finish, cancel -------------------------------------------------------
    async def claim_jobs(
        self,
        owner: str,
        now: float,
        lease_s: float,
        limit: int,
        *,
        max_running: int,
        max_runs: int,
        new_run: Callable[[Job], dict[str, Any]],
    ) -> list[Job]:
        await self.connect()
        claimed: list[Job] = []
        async with self.driver.transaction() as conn:
            full = await conn.fetch(
                "SELECT workspace_id FROM jobs WHERE status = 'running' AND lease_until >= ?"
                " GROUP BY workspace_id HAVING COUNT(*) >= ?",
                now,
                max_running,
            )
            sql = (
                "SELECT * FROM jobs WHERE (status = 'queued'"
                " OR (status = 'running' AND lease_until < ?))"
            )
            args: list[Any] = [now]
            if full:
                sql += f" AND workspace_id NOT IN ({', '.join('?' for _ in full)})"
                args += [r["workspace_id"] for r in full]
            sql += " ORDER BY id LIMIT ?" + (" FOR UPDATE SKIP LOCKED" if self._pg else "")
            rows = await conn.fetch(sql, *args, limit)
            by_workspace: dict[str, list[Job]] = {}
            for row in rows:
                job = job_from_row(row)
                by_workspace.setdefault(job.workspace_id, []).append(job)
            for workspace in sorted(by_workspace):  # one lock order: no deadlock
                await self._lock_workspace(conn, workspace)
                count = await conn.fetch(
                    "SELECT COUNT(*) AS c FROM jobs WHERE workspace_id = ?"
                    " AND status = 'running' AND lease_until >= ?",
                    workspace,
                    now,
                )
                room = max_running - int(count[0]["c"])
                for job in by_workspace[workspace]:
                    if job.run_log and job.run_log[-1].get("outcome") is None:
                        job.run_log[-1].update(outcome=LOST, ended_at=job.lease_until)
                    if job.status == "running" and job.runs >= max_runs:
                        await self._give_up(conn, job, now, max_runs)
                        continue
                    if room <= 0:
                        continue
                    room -= 1
                    job.run_log.append(new_run(job))
                    job.status, job.runs = "running", job.runs + 1
                    job.lease_owner, job.lease_until = owner, now + lease_s
                    job.started_at = job.started_at or now
                    await conn.execute(
                        "UPDATE jobs SET status = 'running', lease_owner = ?, lease_until = ?,"
                        " runs = ?, run_log = ?, started_at = ?, updated_at = ? WHERE id = ?",
                        owner,
                        job.lease_until,
                        job.runs,
                        dumps(job.run_log),
                        job.started_at,
                        now,
                        job.id,
                    )
                    claimed.append(job)
        return claimed

    async def _give_up(self, conn: Conn, job: Job, now: float, max_runs: int) -> None:
        """A job whose every run lost its lease (its workers died): failed, not run again."""
        job.status, job.http_status = "failed", 500
        job.error = {
            "error": {
                "message": f"the job's worker was lost {max_runs} times; not run again",
                "type": "api_error",
                "param": None,
                "code": "job_worker_lost",
            }
        }
        await conn.execute(
            FINISH + " WHERE id = ?",
            job.status,
            None,
            dumps(job.error),
            job.http_status,
            dumps(job.run_log),
            now,
            now,
            job.id,
        )
        job.finished_at = now
        await self._queue_message(conn, job, now)

    async def renew_job(self, job: Job, owner: str, until: float) -> bool:
        await self.connect()
        async with self.driver.transaction() as conn:
            rows = await conn.fetch(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ? AND runs = ?"
                " AND status = 'running' RETURNING id",
                until,
                job.id,
                owner,
                job.runs,
            )
        if rows:
            job.lease_until = until
        return bool(rows)

    async def finish_job(self, job: Job, owner: str, now: float) -> Job | None:
        await self.connect()
        async with self.driver.transaction() as conn:
            rows = await conn.fetch(
                FINISH + " WHERE id = ? AND lease_owner = ? AND runs = ? AND status = 'running'"
                " RETURNING id",
                job.status,
                dumps(job.result),
                dumps(job.error),
                job.http_status,
                dumps(job.run_log),
                now,
                now,
                job.id,
                owner,
                job.runs,
            )
            if not rows:
                return None
            job.finished_at, job.lease_owner, job.lease_until = now, None, None
            await self._queue_message(conn, job, now)
        return job

    async def release_job(self, job: Job, owner: str, now: float) -> bool:
        await self.connect()
        async with self.driver.transaction() as conn:
            rows = await conn.fetch(
                "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL,"
                " run_log = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND runs = ?"
                " AND status = 'running' RETURNING id",
                dumps(job.run_log),
                now,
                job.id,
                owner,
                job.runs,
            )
        return bool(rows)

    async def cancel_job(self, workspace: str, job_id: str, now: float) -> tuple[Job, bool] | None:
        await self.connect()
        lock = " FOR UPDATE" if self._pg else ""
        async with self.driver.transaction() as conn:
            rows = await conn.fetch(
                "SELECT * FROM jobs WHERE workspace_id = ? AND id = ?" + lock, workspace, job_id
            )
            if not rows:
                return None
            job = job_from_row(rows[0])
            if job.finished:
                return job, False
            if job.run_log and job.run_log[-1].get("outcome") is None:
                job.run_log[-1].update(outcome="cancelled", ended_at=now)
            job.status = "cancelled"
            await conn.execute(
                FINISH + " WHERE id = ?",
                job.status,
                None,
                None,
                None,
                dumps(job.run_log),
                now,
                now,
                job.id,
            )
            job.finished_at, job.lease_owner, job.lease_until = now, None, None
            await self._queue_message(conn, job, now)
        return job, True


__all__ = ["JobQueries", "JobStore", "QueueFull"]
