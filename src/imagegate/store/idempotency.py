"""Idempotency records in the control-plane store (used when no Redis is configured).

A mixin of ``SqlStore`` (like ``accounts.py``): it needs ``connect`` and ``driver``. One row
per (workspace, key), table ``idempotency_keys`` (migration 4): the body's fingerprint, the
owner's token, the kept answer (NULL while the call runs) and ``expires_at``: the lease's end
while running, the answer's end once finished. A row past ``expires_at`` counts as absent: a
claim takes it over, ``idem_purge`` deletes it. Each call is one statement in a transaction
(a claim two), so replicas sharing a PostgreSQL see one owner per key. Times are the
callers' (unix seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .driver import Driver

CLAIM = """
INSERT INTO idempotency_keys (workspace_id, idem_key, fingerprint, owner, answer, expires_at,
                              created_at)
VALUES (?, ?, ?, ?, NULL, ?, ?)
ON CONFLICT (workspace_id, idem_key) DO UPDATE SET
    fingerprint = excluded.fingerprint, owner = excluded.owner, answer = NULL,
    expires_at = excluded.expires_at, created_at = excluded.created_at
WHERE idempotency_keys.expires_at <= ?
RETURNING owner
"""
SELECT = (
    "SELECT fingerprint, owner, answer, expires_at FROM idempotency_keys"
    " WHERE workspace_id = ? AND idem_key = ?"
)


@dataclass(frozen=True, slots=True)
class IdempotencyRow:
    """A live row; ``answer`` None while its call runs."""

    fingerprint: str
    owner: str
    answer: str | None
    expires_at: float


class IdempotencyStore(Protocol):
    """The store's part in idempotency keys (``Store`` includes it)."""

    async def idem_claim(
        self,
        workspace: str,
        key: str,
        fingerprint: str,
        owner: str,
        now: float,
        lease_until: float,
    ) -> IdempotencyRow | None:
        """None: the key is ``owner``'s now (a new row, or one past ``expires_at`` taken
        over); else the live row that holds it."""
        ...

    async def idem_renew(self, workspace: str, key: str, owner: str, lease_until: float) -> bool:
        """Move ``owner``'s running lease to ``lease_until``; False when not ``owner``'s."""
        ...

    async def idem_finish(
        self, workspace: str, key: str, owner: str, answer: str, expires_at: float
    ) -> bool:
        """Keep ``answer`` until ``expires_at``; False when the row is no longer ``owner``'s."""
        ...

    async def idem_abandon(self, workspace: str, key: str, owner: str) -> None:
        """Delete the row if ``owner``'s (running or finished)."""
        ...

    async def idem_purge(self, now: float) -> int:
        """Delete every row past ``expires_at``; how many."""
        ...


class IdempotencyQueries:
    """``idem_claim`` … ``idem_purge`` of the ``Store`` protocol."""

    driver: Driver

    async def connect(self) -> None:
        raise NotImplementedError  # SqlStore's

    async def _write(self, sql: str, *args: Any) -> list[Any]:
        """One writing statement in a transaction of its own (its RETURNING rows)."""
        await self.connect()
        async with self.driver.transaction() as conn:
            return await conn.fetch(sql, *args)

    async def idem_claim(
        self,
        workspace: str,
        key: str,
        fingerprint: str,
        owner: str,
        now: float,
        lease_until: float,
    ) -> IdempotencyRow | None:
        """None: the key is ``owner``'s now; else the live row that holds it."""
        await self.connect()
        async with self.driver.transaction() as conn:
            taken = await conn.fetch(
                CLAIM, workspace, key, fingerprint, owner, lease_until, now, now
            )
            if taken and taken[0]["owner"] == owner:
                return None
            rows = await conn.fetch(SELECT, workspace, key)
        if not rows:  # deleted between the two statements: as good as taken by nobody
            return IdempotencyRow(fingerprint, "", None, now)
        r = rows[0]
        return IdempotencyRow(r["fingerprint"], r["owner"], r["answer"], float(r["expires_at"]))

    async def idem_renew(self, workspace: str, key: str, owner: str, lease_until: float) -> bool:
        rows = await self._write(
            "UPDATE idempotency_keys SET expires_at = ? WHERE workspace_id = ? AND idem_key = ?"
            " AND owner = ? AND answer IS NULL RETURNING owner",
            lease_until,
            workspace,
            key,
            owner,
        )
        return bool(rows)

    async def idem_finish(
        self, workspace: str, key: str, owner: str, answer: str, expires_at: float
    ) -> bool:
        """Keep ``answer`` on ``owner``'s row (its lease may have lapsed, if nobody took it)."""
        rows = await self._write(
            "UPDATE idempotency_keys SET answer = ?, expires_at = ? WHERE workspace_id = ?"
            " AND idem_key = ? AND owner = ? AND answer IS NULL RETURNING owner",
            answer,
            expires_at,
            workspace,
            key,
            owner,
        )
        return bool(rows)

    async def idem_abandon(self, workspace: str, key: str, owner: str) -> None:
        await self._write(
            "DELETE FROM idempotency_keys WHERE workspace_id = ? AND idem_key = ? AND owner = ?"
            " RETURNING owner",
            workspace,
            key,
            owner,
        )

    async def idem_purge(self, now: float) -> int:
        """Delete the rows past ``expires_at``; how many."""
        rows = await self._write(
            "DELETE FROM idempotency_keys WHERE expires_at <= ? RETURNING owner", now
        )
        return len(rows)
