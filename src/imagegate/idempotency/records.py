"""Where idempotency records live: one small protocol, Redis or the control-plane store.

A record is, per (workspace, key): the fingerprint of the body, the owner (a random token of
the request that runs or ran it) and, once finished, the kept answer. While it runs the record
is a lease that the owner renews; a lease that lapses (its replica died) is as good as no
record, and the next request with the key claims it. Every operation is atomic on its own,
so any number of replicas can share the records; every failure is ``RecordsUnavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .keys import Scope


class RecordsUnavailable(Exception):
    """Redis or the store could not be reached (or answered nonsense) just now."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A live record: running (``answer`` None) or finished."""

    fingerprint: str
    owner: str
    answer: bytes | None = None


class Records(Protocol):
    async def claim(
        self, scope: Scope, fingerprint: str, owner: str, lease_s: float
    ) -> Entry | None:
        """Take the key for ``owner`` (None) unless a live record holds it (that record)."""
        ...

    async def renew(self, scope: Scope, fingerprint: str, owner: str, lease_s: float) -> bool:
        """Extend ``owner``'s running lease; False when it is no longer ``owner``'s."""
        ...

    async def finish(
        self, scope: Scope, fingerprint: str, owner: str, answer: bytes, ttl_s: int
    ) -> bool:
        """Keep ``answer`` for ``ttl_s`` unless another owner has taken the key meanwhile."""
        ...

    async def abandon(self, scope: Scope, owner: str) -> None:
        """Drop the record if ``owner`` holds it (running or finished): the key is free."""
        ...

    async def close(self) -> None: ...
