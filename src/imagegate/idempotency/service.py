"""One upstream call per (workspace, key): claim, run detached, keep, replay (docs/long-calls.md).

``Idempotency.run`` takes the request's scope and fingerprint and the call to make::

    outcome = await idem.run(scope, fp, trace_id, lambda: gateway.handle(req, ctx), req.hold_files)
    # an ImagesResponse (this request ran the call) or a Replay (another one did)

- No live record: this request claims the key and runs the call in a task of its own, so a
  client that leaves (a timeout, a dropped connection) does not cancel it: the call finishes,
  its answer is kept, and the client's retry gets it. The claim is a lease renewed every third
  of ``lease_s`` while the call runs.
- A finished record with the same fingerprint: its answer, replayed (``answer.replay``).
- A running one with the same fingerprint: wait for it — on its task when it runs in this
  process, else by polling the records — for at most ``wait_s`` (the routing deadline, which
  bounds the call itself), then 409 ``idempotency_key_in_use``. A waiter whose leader failed
  with an answer that is not kept (5xx, timeout) finds the key free and runs the call itself.
- Another fingerprint: 422 ``idempotency_key_reused``.
- The records unreachable: 503. Running without them could charge twice, which is exactly what
  the caller sent a key to prevent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..blobs import BlobStore, BlobStoreError, URLSigner
from ..config import Config
from ..errors import GatewayError, ServiceUnavailable
from ..gateway import ImagesResponse
from ..store import Store
from .answer import Kept, Replay, keeps, kept_error, kept_success, replay
from .keys import HEADER, Scope
from .records import Entry, Records, RecordsUnavailable
from .redis import RedisRecords
from .settings import IdempotencyConfig
from .stored import StoredRecords

log = logging.getLogger("imagegate.idempotency")
T = TypeVar("T")

POLL_FIRST_S = 0.02  # waiting on another replica: poll the record, doubling up to POLL_MAX_S
POLL_MAX_S = 0.5
OUTCOMES = (
    "ran",
    "replayed",
    "waited",
    "reused",
    "in_use",
    "unavailable",
    "kept",
    "not_kept",
    "too_large",
    "lease_lost",
    "record_failed",
    "unusable",
)


class KeyReused(GatewayError):
    status = 422
    code = "idempotency_key_reused"
    type = "invalid_request_error"


class KeyInUse(GatewayError):
    status = 409
    code = "idempotency_key_in_use"
    type = "invalid_request_error"


def make_records(config: Config, store: Store) -> Records:
    """Redis when the config names one (``idempotency.backend: auto``), else the store."""
    settings = config.idempotency
    url = config.shared_redis_url
    if url and settings.backend == "auto":
        return RedisRecords(url, prefix=settings.prefix)
    return StoredRecords(store)


@dataclass(slots=True)
class _Lead:
    fingerprint: str
    task: asyncio.Task[ImagesResponse]


class Idempotency:
    def __init__(
        self,
        settings: IdempotencyConfig,
        records: Records,
        blobs: BlobStore,
        signer: URLSigner,
        *,
        wait_s: float,
    ) -> None:
        self.settings = settings
        self.records = records
        self.blobs = blobs
        self.signer = signer
        self.wait_s = wait_s
        self.leads: dict[Scope, _Lead] = {}
        self.counts: Counter[str] = Counter()
        self.waiting = 0  # requests waiting right now for another with their key

    async def run(
        self,
        scope: Scope,
        fingerprint: str,
        trace_id: str,
        call: Callable[[], Awaitable[ImagesResponse]],
        hold: Callable[[], Callable[[], None]],
    ) -> ImagesResponse | Replay:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.wait_s
        pause, waited = POLL_FIRST_S, False
        try:
            while True:
                lead = self.leads.get(scope)
                if lead is not None and not lead.task.done():  # running here: wait on it
                    self._same(lead.fingerprint, fingerprint)
                    waited = self._wait_starts(waited)
                    await asyncio.wait([lead.task], timeout=max(0.0, give_up - loop.time()))
                    if not lead.task.done():
                        raise self.in_use()
                    continue
                owner = secrets.token_hex(16)
                claim = self.records.claim(scope, fingerprint, owner, self.lease_s)
                entry = await self.guard(claim)
                if entry is None:
                    waited = self._wait_ends(waited)
                    self.counts["ran"] += 1
                    return await self._lead(scope, fingerprint, owner, trace_id, call, hold)
                self._same(entry.fingerprint, fingerprint)
                if entry.answer is not None:
                    replayed = await self._replay(scope, entry)
                    if replayed is not None:
                        self.counts["waited" if waited else "replayed"] += 1
                        return replayed
                    continue  # unusable (an image left the blob store): the key is free again
                remaining = give_up - loop.time()  # running on another replica: poll
                if remaining <= 0:
                    raise self.in_use()
                waited = self._wait_starts(waited)
                await asyncio.sleep(min(pause, remaining))
                pause = min(pause * 2, POLL_MAX_S)
        finally:
            self._wait_ends(waited)

    def _wait_starts(self, waited: bool) -> bool:
        """This request waits for another from now on (``imagegate_idempotency_waiting``)."""
        if not waited:
            self.waiting += 1
        return True

    def _wait_ends(self, waited: bool) -> bool:
        if waited:
            self.waiting -= 1
        return False

    @property
    def lease_s(self) -> float:
        return self.settings.lease_s

    def _same(self, recorded: str, fingerprint: str) -> None:
        if recorded != fingerprint:
            self.counts["reused"] += 1
            raise KeyReused(
                f"this {HEADER} was used with a different request body; use a new key for a"
                " new request",
                param=HEADER,
            )

    def in_use(self) -> KeyInUse:
        self.counts["in_use"] += 1
        return KeyInUse(f"a request with this {HEADER} is still running; retry later", param=HEADER)

    async def guard(self, op: Awaitable[T]) -> T:
        """``op`` on the records; records out of reach → 503 ``idempotency_unavailable``."""
        try:
            return await op
        except RecordsUnavailable as exc:
            self.counts["unavailable"] += 1
            log.warning("idempotency records unavailable: %s", exc)
            raise ServiceUnavailable(
                f"requests with an {HEADER} cannot be served right now (their records are"
                " unreachable); retry shortly",
                code="idempotency_unavailable",
                headers={"Retry-After": "1"},
            ) from None

    async def _replay(self, scope: Scope, entry: Entry) -> Replay | None:
        assert entry.answer is not None
        kept = Kept.decode(entry.answer)
        try:
            replayed = await replay(kept, self.blobs, self.signer) if kept else None
        except BlobStoreError as exc:
            raise ServiceUnavailable("the image store is unavailable") from exc
        if replayed is None:
            self.counts["unusable"] += 1
            log.warning("idempotency record %s unusable; the key runs again", scope.digest[:16])
            await self.guard(self.records.abandon(scope, entry.owner))
        return replayed

    # --- the leader ------------------------------------------------------------------------
    async def _lead(
        self,
        scope: Scope,
        fingerprint: str,
        owner: str,
        trace_id: str,
        call: Callable[[], Awaitable[ImagesResponse]],
        hold: Callable[[], Callable[[], None]],
    ) -> ImagesResponse:
        release = hold()  # the uploads outlive this request if its client leaves
        task = asyncio.create_task(self._run_lead(scope, fingerprint, owner, trace_id, call))
        lead = self.leads[scope] = _Lead(fingerprint, task)

        def done(finished: asyncio.Task[ImagesResponse]) -> None:
            release()
            if self.leads.get(scope) is lead:
                del self.leads[scope]
            if not finished.cancelled():
                finished.exception()  # retrieved: nobody may be left to await it

        task.add_done_callback(done)
        return await asyncio.shield(task)  # a client that leaves cancels only its wait

    async def _run_lead(
        self,
        scope: Scope,
        fingerprint: str,
        owner: str,
        trace_id: str,
        call: Callable[[], Awaitable[ImagesResponse]],
    ) -> ImagesResponse:
        renewer = asyncio.create_task(self._renew(scope, fingerprint, owner))
        try:
            try:
                response = await call()
            except GatewayError as exc:
                kept = kept_error(exc, trace_id) if keeps(exc.status) else None
                await self._settle(scope, fingerprint, owner, kept)
                raise
            except BaseException:
                await self._settle(scope, fingerprint, owner, None)
                raise
            try:
                kept = await kept_success(response, self.blobs)
            except BlobStoreError as exc:
                log.error("cannot keep an idempotent answer, blob store failed: %s", exc)
                kept = None
            await self._settle(scope, fingerprint, owner, kept)
            return response
        finally:
            renewer.cancel()

    async def _renew(self, scope: Scope, fingerprint: str, owner: str) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                if not await self.records.renew(scope, fingerprint, owner, self.lease_s):
                    self.counts["lease_lost"] += 1
                    log.warning("idempotency lease %s lost mid-call", scope.digest[:16])
                    return
            except RecordsUnavailable as exc:
                log.warning("idempotency lease %s not renewed: %s", scope.digest[:16], exc)

    async def _settle(self, scope: Scope, fingerprint: str, owner: str, kept: Kept | None) -> None:
        """Keep the answer, or free the key (not kept, too large); never raises."""
        try:
            if kept is not None:
                raw = kept.encode()
                if len(raw) <= self.settings.max_record_bytes:
                    ttl_s = self.settings.ttl_s
                    if await self.records.finish(scope, fingerprint, owner, raw, ttl_s):
                        self.counts["kept"] += 1
                    else:
                        self.counts["lease_lost"] += 1
                        log.warning("idempotency lease %s lost; answer not kept", scope.digest[:16])
                    return
                self.counts["too_large"] += 1
                log.warning(
                    "idempotent answer of %d bytes over idempotency.max_record_bytes; not kept",
                    len(raw),
                )
            else:
                self.counts["not_kept"] += 1
            await self.records.abandon(scope, owner)
        except RecordsUnavailable as exc:
            self.counts["record_failed"] += 1
            log.warning("idempotency record %s not written: %s", scope.digest[:16], exc)

    # --- lifecycle and metrics ---------------------------------------------------------------
    async def close(self) -> None:
        """Cancel calls still running for departed clients (their keys are freed), then close."""
        tasks = [lead.task for lead in self.leads.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.records.close()

    def metrics_text(self) -> str:
        """Prometheus text: requests with an Idempotency-Key and their records, by outcome."""
        name = "imagegate_idempotency_total"
        lines = [
            f"# HELP {name} Idempotency-Key requests and records by outcome (this process).",
            f"# TYPE {name} counter",
        ]
        lines += [f'{name}{{outcome="{o}"}} {self.counts[o]}' for o in OUTCOMES]
        gauge = "imagegate_idempotency_waiting"
        lines += [
            f"# HELP {gauge} Requests waiting for a running request with their key.",
            f"# TYPE {gauge} gauge",
            f"{gauge} {self.waiting}",
        ]
        return "\n".join(lines) + "\n"
