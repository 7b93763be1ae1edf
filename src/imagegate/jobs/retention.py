"""Finished jobs are deleted ``jobs.retention_s`` after they ended (docs/long-calls.md).

Every process that runs jobs purges too, in a loop of its own beside the claim loop: each pass
deletes at most ``BATCH`` jobs that finished before the cutoff, with their webhook delivery
records, in one transaction (PostgreSQL: ``SKIP LOCKED``, so replicas purging at once take
different rows), then deletes what is left of their uploads in the blob store (normally
nothing: a job deletes them when it ends; a job that failed because its workers were lost did
not). A job whose webhook message is still being retried stays until that message is
delivered or given up (``webhooks.max_age_s``). A purged job is a 404, like one that never
existed.

The images of a job's answer are **not** deleted: the blob store is content-addressed, and the
same bytes are the image of the job's trace, of cache entries, of idempotency records and of
any other answer that produced them. Nothing here can tell whether another owner still needs
a key, so image blobs live as long as the blob store keeps them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..store import StoreUnavailable
from .inputs import delete_inputs

if TYPE_CHECKING:
    from .service import JobService

log = logging.getLogger("imagegate.jobs")
BATCH = 200  # jobs deleted per pass; a full pass is followed at once by another
MAX_EVERY_S = 60.0  # the longest pause between two passes


def pause_s(retention_s: float, poll_interval_s: float) -> float:
    """Between two passes: a tenth of the retention, within [poll interval, a minute]."""
    return min(max(retention_s / 10, poll_interval_s), MAX_EVERY_S)


async def purge_once(service: JobService, now: float, limit: int = BATCH) -> int:
    """One pass: how many jobs were deleted."""
    cutoff = now - service.gateway.config.jobs.retention_s
    purged = await service.store.purge_jobs(cutoff, limit)
    for inputs in purged.values():
        if inputs:
            await delete_inputs(service.output.store, inputs)
    if purged:
        log.info("jobs: %d finished job(s) past retention deleted", len(purged))
    return len(purged)


async def purge_loop(service: JobService) -> None:
    """Purge for ever (cancelled with the runner)."""
    config = service.gateway.config.jobs
    every = pause_s(config.retention_s, config.poll_interval_s)
    while True:
        deleted = 0
        try:
            deleted = await purge_once(service, time.time())
        except StoreUnavailable as exc:
            log.warning("jobs: cannot purge finished jobs (store unavailable): %s", exc)
        except Exception:
            log.exception("jobs: purging finished jobs failed")
        # a timer between passes, not a synchronisation point; a full batch goes on at once
        await asyncio.sleep(0 if deleted >= BATCH else every)
