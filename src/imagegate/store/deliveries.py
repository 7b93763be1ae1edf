"""The webhook outbox of the job queue, and the purge of finished jobs with their deliveries.

A job's webhook message is inserted in the same transaction that moves the job to a finished
state (``JobQueries`` calls ``_queue_message``): one message per job. Deliverers claim pending
messages under a lease (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, replicas claim apart) and
record each attempt. ``purge_jobs`` deletes finished jobs past their retention with their
delivery records, one bounded batch per transaction (PostgreSQL: ``SKIP LOCKED`` again,
replicas purge apart).
"""

from __future__ import annotations

from typing import Any, Protocol

from ulid import ULID

from .driver import Conn, Driver
from .jobrecords import DELIVERY_COLUMNS, Delivery, Job, delivery_from_row, delivery_row
from .rows import dumps, loads

INSERT_DELIVERY = (
    f"INSERT INTO webhook_deliveries ({', '.join(DELIVERY_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in DELIVERY_COLUMNS)})"
)


def message_id() -> str:
    return f"msg_{ULID()}"


class DeliveryStore(Protocol):
    """The webhook outbox and job retention (every method may raise ``StoreUnavailable``)."""

    async def get_delivery(self, workspace: str, job_id: str) -> Delivery | None: ...

    async def claim_deliveries(
        self, owner: str, now: float, lease_s: float, limit: int
    ) -> list[Delivery]: ...

    async def record_delivery(self, delivery: Delivery, owner: str) -> bool:
        """Store ``delivery``'s attempts, status and ``next_at``; releases the lease."""
        ...

    async def purge_jobs(self, before: float, limit: int) -> dict[str, list[dict[str, Any]]]:
        """Delete up to ``limit`` jobs that finished before ``before`` and whose webhook
        message is no longer pending, with their delivery records; each one's ``inputs``."""
        ...


class DeliveryQueries:
    """``DeliveryStore`` for ``SqlStore`` (a mixin, through ``JobQueries``)."""

    driver: Driver

    async def connect(self) -> None:
        raise NotImplementedError  # SqlStore's

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError  # SqlStore's

    @property
    def _pg(self) -> bool:
        return self.driver.dialect == "postgresql"

    # --- the outbox ------------------------------------------------------------------------
    async def _queue_message(self, conn: Conn, job: Job, now: float) -> None:
        if job.webhook_url is None or job.webhook_secret_id is None:
            return
        delivery = Delivery(
            message_id(),
            job.workspace_id,
            job.id,
            job.webhook_url,
            job.webhook_secret_id,
            "pending",
            now,
            now,
        )
        await conn.execute(INSERT_DELIVERY, *delivery_row(delivery))

    async def get_delivery(self, workspace: str, job_id: str) -> Delivery | None:
        rows = await self._fetch(
            "SELECT * FROM webhook_deliveries WHERE workspace_id = ? AND job_id = ?"
            " ORDER BY id DESC LIMIT 1",
            workspace,
            job_id,
        )
        return delivery_from_row(rows[0]) if rows else None

    async def claim_deliveries(
        self, owner: str, now: float, lease_s: float, limit: int
    ) -> list[Delivery]:
        await self.connect()
        async with self.driver.transaction() as conn:
            rows = await conn.fetch(
                "SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ?"
                " AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_at LIMIT ?"
                + (" FOR UPDATE SKIP LOCKED" if self._pg else ""),
                now,
                now,
                limit,
            )
            out = [delivery_from_row(r) for r in rows]
            for delivery in out:
                delivery.lease_owner, delivery.lease_until = owner, now + lease_s
                await conn.execute(
                    "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ? WHERE id = ?",
                    owner,
                    delivery.lease_until,
                    delivery.id,
                )
        return out

    async def record_delivery(self, delivery: Delivery, owner: str) -> bool:
        await self.connect()
        async with self.driver.transaction() as conn:
            rows = await conn.fetch(
                "UPDATE webhook_deliveries SET attempts = ?, status = ?, next_at = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?"
                " RETURNING id",
                dumps(delivery.attempts),
                delivery.status,
                delivery.next_at,
                delivery.id,
                owner,
            )
        return bool(rows)

    # --- retention --------------------------------------------------------------------------
    async def purge_jobs(self, before: float, limit: int) -> dict[str, list[dict[str, Any]]]:
        await self.connect()
        async with self.driver.transaction() as conn:
            rows = await conn.fetch(
                "SELECT id, workspace_id, inputs FROM jobs j WHERE status IN"
                " ('succeeded', 'failed', 'cancelled') AND finished_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM webhook_deliveries d WHERE d.workspace_id = j.workspace_id"
                " AND d.job_id = j.id AND d.status = 'pending') ORDER BY finished_at LIMIT ?"
                + (" FOR UPDATE SKIP LOCKED" if self._pg else ""),  # replicas purge apart
                before,
                limit,
            )
            by_workspace: dict[str, list[str]] = {}
            for row in rows:
                by_workspace.setdefault(row["workspace_id"], []).append(row["id"])
            for workspace, ids in sorted(by_workspace.items()):
                marks = ", ".join("?" for _ in ids)
                for table, column in (("webhook_deliveries", "job_id"), ("jobs", "id")):
                    await conn.execute(
                        f"DELETE FROM {table} WHERE workspace_id = ? AND {column} IN ({marks})",
                        workspace,
                        *ids,
                    )
        return {row["id"]: loads(row["inputs"]) or [] for row in rows}


__all__ = ["DeliveryQueries", "DeliveryStore", "message_id"]
