"""Delivering job webhooks: claimed from the store's outbox by any replica, signed, retried.

A finished job's message is a row (``webhook_deliveries``) written with the job's final
state, so it survives restarts and any replica may send it. The sender claims due messages
under a short lease (one attempt's timeout, twice, plus a margin), POSTs each one signed per
Standard Webhooks, and records the attempt on the row: a 2xx ends it (``delivered``);
anything else — another status, a timeout, a refused address, a redirect — schedules the
next attempt after ``backoff_base_s`` doubled per attempt (capped at ``backoff_max_s``,
with jitter), until ``max_age_s`` after the job ended (then ``failed``). A receiver may see
a message twice (a sender that died after the POST but before recording it): it has the
same ``webhook-id``, which is what receivers deduplicate on.

The body is built on each attempt from the job as stored, with fresh signed image URLs
(never base64), so a late retry does not carry URLs that expired meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from ..jobs.views import iso, job_view
from ..net import BodyTooLarge, GuardedResolver, RefusedAddress, check_literal, read_capped
from ..store import StoreUnavailable
from ..store.jobrecords import Delivery
from .signing import sign
from .target import host_port

if TYPE_CHECKING:
    from ..jobs.service import JobService

log = logging.getLogger("imagegate.webhooks")
USER_AGENT = "imagegate-webhooks/1"
MAX_ERROR_CHARS = 300


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """The pause after failed attempt ``attempt`` (1-based): base·2^(n-1), capped, ±20 %."""
    pause: float = min(base_s * 2.0 ** min(attempt - 1, 40), max_s)
    return pause * rng.uniform(0.8, 1.2)


class WebhookSender:
    def __init__(self, service: JobService) -> None:
        self.service = service
        self.config = service.gateway.config.webhooks
        self.allow_private = service.gateway.config.fetch.allow_private
        self.owner = service.runner.owner
        self.rng = random.Random()
        self.sending: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def lease_s(self) -> float:
        return self.config.timeout_s * 2 + 5

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._loop is None and self.config.workers > 0:
            self._loop = asyncio.create_task(self._claim_loop(), name="imagegate-webhooks")

    async def close(self) -> None:
        loop, self._loop = self._loop, None
        tasks = [*([loop] if loop else []), *self.sending]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(allow_private=self.allow_private), limit=64
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def _claim_loop(self) -> None:
        while True:
            self._wake.clear()
            free = self.config.workers - len(self.sending)
            due: list[Delivery] = []
            if free > 0:
                try:
                    due = await self.service.store.claim_deliveries(
                        self.owner, time.time(), self.lease_s, free
                    )
                except StoreUnavailable as exc:
                    log.warning("webhooks: cannot claim (store unavailable): %s", exc)
                except Exception:
                    log.exception("webhooks: claiming failed")
            for delivery in due:
                task = asyncio.create_task(self._deliver(delivery))
                self.sending.add(task)
                task.add_done_callback(self._done)
            if due and len(due) == free:
                await self._wake.wait()
                continue
            with contextlib.suppress(TimeoutError):  # idle, or every message waits its turn
                await asyncio.wait_for(self._wake.wait(), self._pause())

    def _pause(self) -> float:
        return min(self.service.gateway.config.jobs.poll_interval_s, self.config.backoff_base_s)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.sending.discard(task)
        self._wake.set()

    # --- one attempt ----------------------------------------------------------------------
    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await self._deliver_once(delivery)
        except Exception:  # its lease lapses and it is tried again
            log.exception("webhook %s: delivery failed unexpectedly", delivery.id)

    async def _deliver_once(self, delivery: Delivery) -> None:
        started = time.time()
        status, error = await self._attempt(delivery)
        attempt: dict[str, Any] = {
            "attempt": len(delivery.attempts) + 1,
            "at": started,
            "status_code": status,
            "error": error,
            "duration_ms": round((time.time() - started) * 1000, 1),
        }
        delivery.attempts.append(attempt)
        now = time.time()
        if status is not None and 200 <= status < 300:
            delivery.status = "delivered"
        else:
            pause = backoff_s(
                len(delivery.attempts),
                self.config.backoff_base_s,
                self.config.backoff_max_s,
                self.rng,
            )
            delivery.next_at = now + pause
            if delivery.next_at - delivery.created_at > self.config.max_age_s:
                delivery.status = "failed"
        for _ in range(5):
            try:
                if not await self.service.store.record_delivery(delivery, self.owner):
                    log.warning(
                        "webhook %s: lease lost before its attempt was recorded", delivery.id
                    )
                return
            except StoreUnavailable as exc:
                log.warning("webhook %s: cannot record the attempt yet: %s", delivery.id, exc)
                await asyncio.sleep(0.5)  # a retry pause

    async def _attempt(self, delivery: Delivery) -> tuple[int | None, str | None]:
        """(the receiver's status, or None; what went wrong, or None)."""
        entry = self.config.secrets.get(delivery.secret_id)
        if entry is None:
            return None, f"secret {delivery.secret_id!r} is no longer configured"
        try:
            body = await self._body(delivery)
        except StoreUnavailable:
            return None, "the store is unavailable"
        if body is None:
            return None, "the job is gone"
        headers = {
            "content-type": "application/json",
            **sign(delivery.id, int(time.time()), body, entry.secret),
        }
        host, _ = host_port(delivery.url)
        try:
            check_literal(host, allow_private=self.allow_private)
            async with self._http().post(
                delivery.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                with contextlib.suppress(BodyTooLarge):
                    await read_capped(resp, self.config.max_response_bytes)  # keep-alive
                return resp.status, None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except RefusedAddress as exc:
            return None, f"address refused: {exc}"
        except TimeoutError:
            return None, f"no answer within {self.config.timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]

    async def _body(self, delivery: Delivery) -> bytes | None:
        service = self.service
        job = await service.store.get_job(delivery.workspace_id, delivery.job_id)
        if job is None:
            return None
        base = job.caller.get("base_url") or ""
        data = await job_view(service.output, job, None, base_url=base, want="url")
        data.pop("webhook", None)  # the delivery log is not part of the message
        message = {"type": f"image.job.{job.status}", "timestamp": iso(time.time()), "data": data}
        return orjson.dumps(message)
