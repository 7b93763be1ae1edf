"""``Idempotency-Key`` on job submissions: one job per (workspace, key), however often the
client retries the ``POST`` (docs/long-calls.md).

The records are those of the image routes (``idempotency/``: Redis when configured, else the
store; per workspace), and so is the protocol: claim the key, do the work, keep the answer.
The work here is only the queueing, and the answer is the small ``202`` (the queued job), so
it is kept as it is and replayed as the same bytes with ``idempotent-replayed: true`` — the
same job id, never a second job. What differs from the image routes:

- the fingerprint is the image routes' one plus the webhook (``orq.webhook``, which the image
  routes ignore) under a tag of its own, so a key used for a synchronous call and then for a
  job (or the reverse) is ``422 idempotency_key_reused``, never the other route's answer;
- a second request arriving while the first is still queueing the job polls the record until
  the first one answers (queueing takes milliseconds; uploads to the blob store, longer), for
  at most ``idempotency.lease_s``, then ``409 idempotency_key_in_use``;
- a 4xx answered at submission is kept like on the image routes (not 408/409/425/429: a full
  queue is a "try again", so the retry may queue the job); a 5xx is not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import GatewayError
from ..idempotency.answer import Kept, keeps, kept_error
from ..idempotency.keys import HEADER, Scope, fingerprint
from ..idempotency.records import RecordsUnavailable
from ..idempotency.service import Idempotency, KeyReused
from ..request import ImageRequest

log = logging.getLogger("imagegate.jobs")
TAG = "image.job/1"  # keeps a job's fingerprint apart from the image routes' ones
POLL_FIRST_S = 0.02  # another request is queueing the job: poll, doubling up to POLL_MAX_S
POLL_MAX_S = 0.5


@dataclass(frozen=True, slots=True)
class Answer:
    """What the submission answers: the first one's, or its replay."""

    status: int
    headers: dict[str, str]
    body: bytes
    replayed: bool


async def job_fingerprint(request: ImageRequest, workspace: str) -> str:
    """The image routes' fingerprint of ``request`` with its webhook, tagged as a job's."""
    orq = (request.echo or {}).get("orq")
    webhook = orq.get("webhook") if isinstance(orq, dict) else None
    doc = {"tag": TAG, "body": await fingerprint(request, workspace), "webhook": webhook}
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def submit_once(
    idem: Idempotency,
    scope: Scope,
    fp: str,
    trace_id: str,
    submit: Callable[[], Awaitable[tuple[dict[str, Any], dict[str, str]]]],
) -> Answer:
    """Queue the job with ``submit`` (its view and headers) unless ``scope`` already did;
    a ``GatewayError`` (first or replayed answer) propagates."""
    loop = asyncio.get_running_loop()
    lease_s = idem.settings.lease_s
    give_up = loop.time() + lease_s
    pause = POLL_FIRST_S
    while True:
        owner = secrets.token_hex(16)
        entry = await idem.guard(idem.records.claim(scope, fp, owner, lease_s))
        if entry is None:
            idem.counts["ran"] += 1
            return await _first(idem, scope, fp, owner, trace_id, submit)
        if entry.fingerprint != fp:
            idem.counts["reused"] += 1
            raise KeyReused(
                f"this {HEADER} was used with a different request body; use a new key for a"
                " new request",
                param=HEADER,
            )
        if entry.answer is not None:
            kept = Kept.decode(entry.answer)
            if kept is not None:
                idem.counts["replayed"] += 1
                return Answer(kept.status, kept.headers, orjson.dumps(kept.body), True)
            idem.counts["unusable"] += 1
            await idem.guard(idem.records.abandon(scope, entry.owner))
            continue
        remaining = give_up - loop.time()
        if remaining <= 0:
            raise idem.in_use()
        await asyncio.sleep(min(pause, remaining))  # a poll interval while the other queues
        pause = min(pause * 2, POLL_MAX_S)


async def _first(
    idem: Idempotency,
    scope: Scope,
    fp: str,
    owner: str,
    trace_id: str,
    submit: Callable[[], Awaitable[tuple[dict[str, Any], dict[str, str]]]],
) -> Answer:
    renewer = asyncio.create_task(_renew(idem, scope, fp, owner))
    try:
        try:
            view, headers = await submit()
        except GatewayError as exc:
            await _settle(
                idem, scope, fp, owner, kept_error(exc, trace_id) if keeps(exc.status) else None
            )
            raise
        except BaseException:
            await asyncio.shield(_settle(idem, scope, fp, owner, None))
            raise
    finally:
        renewer.cancel()
    body = orjson.dumps(view)
    await _settle(idem, scope, fp, owner, Kept(202, trace_id, headers, view))
    return Answer(202, headers, body, False)


async def _renew(idem: Idempotency, scope: Scope, fp: str, owner: str) -> None:
    """Keep the claim while the job is queued (a large upload to the blob store takes time)."""
    lease_s = idem.settings.lease_s
    while True:
        await asyncio.sleep(lease_s / 3)  # a renewal timer
        with contextlib.suppress(RecordsUnavailable):
            if not await idem.records.renew(scope, fp, owner, lease_s):
                return


async def _settle(idem: Idempotency, scope: Scope, fp: str, owner: str, kept: Kept | None) -> None:
    """Keep the answer, or free the key; never raises (the job is queued either way)."""
    try:
        if kept is not None:
            if await idem.records.finish(scope, fp, owner, kept.encode(), idem.settings.ttl_s):
                idem.counts["kept"] += 1
                return
            idem.counts["lease_lost"] += 1
            log.warning("idempotency lease %s lost; job submission not kept", scope.digest[:16])
        else:
            idem.counts["not_kept"] += 1
        await idem.records.abandon(scope, owner)
    except RecordsUnavailable as exc:
        idem.counts["record_failed"] += 1
        log.warning("idempotency record %s not written: %s", scope.digest[:16], exc)
