"""Idempotency records in the control-plane store (SQLite, or PostgreSQL shared by replicas):
the ``Records`` protocol over ``Store.idem_*``. Expired rows are deleted at most once a
``PURGE_EVERY_S`` per process, on the way through a claim."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..store import Store, StoreUnavailable
from .keys import Scope
from .records import Entry, RecordsUnavailable

log = logging.getLogger("imagegate.idempotency")

PURGE_EVERY_S = 60.0


class StoredRecords:
    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._next_purge = 0.0

    async def claim(
        self, scope: Scope, fingerprint: str, owner: str, lease_s: float
    ) -> Entry | None:
        now = self.clock()
        try:
            if now >= self._next_purge:
                self._next_purge = now + PURGE_EVERY_S
                await self.store.idem_purge(now)
            row = await self.store.idem_claim(
                scope.workspace, scope.key, fingerprint, owner, now, now + lease_s
            )
        except StoreUnavailable as exc:
            raise RecordsUnavailable(str(exc)) from exc
        if row is None:
            return None
        answer = row.answer.encode() if row.answer is not None else None
        return Entry(row.fingerprint, row.owner, answer)

    async def renew(self, scope: Scope, fingerprint: str, owner: str, lease_s: float) -> bool:
        try:
            until = self.clock() + lease_s
            return await self.store.idem_renew(scope.workspace, scope.key, owner, until)
        except StoreUnavailable as exc:
            raise RecordsUnavailable(str(exc)) from exc

    async def finish(
        self, scope: Scope, fingerprint: str, owner: str, answer: bytes, ttl_s: int
    ) -> bool:
        try:
            until = self.clock() + ttl_s
            return await self.store.idem_finish(
                scope.workspace, scope.key, owner, answer.decode(), until
            )
        except StoreUnavailable as exc:
            raise RecordsUnavailable(str(exc)) from exc

    async def abandon(self, scope: Scope, owner: str) -> None:
        try:
            await self.store.idem_abandon(scope.workspace, scope.key, owner)
        except StoreUnavailable as exc:
            raise RecordsUnavailable(str(exc)) from exc

    async def close(self) -> None:
        return None  # the gateway owns the store
