"""Finished jobs are deleted after ``jobs.retention_s``, over real HTTP, on SQLite and
PostgreSQL (the store-level cases, with explicit clocks, are in test_jobs_store.py).

A one-second retention; every wait is on a condition: the webhook delivered (a job whose
message is still pending is never purged, so the receiver sees it first), then the job's
404. The job's image stays in the blob store: it is content-addressed and shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import on_database
from jobkit import MODEL, WHSEC, Client, GatedOpenAI, Receiver, png
from live import LiveGateway
from standardwebhooks import Webhook
from waiting import wait_until

from imagegate.blobs import LocalBlobStore, blob_key
from imagegate.store import SqlStore
from imagegate.store.postgres import PostgresDriver
from imagegate.store.sqlite import SqliteDriver

ADMIN = "sk-jobs-retention"


@pytest.fixture
def make_config(make_config: Any, database_url: str | None) -> Any:
    return on_database(make_config, database_url)


@pytest.fixture
def upstream() -> Iterator[GatedOpenAI]:
    with GatedOpenAI() as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def count_rows(tmp_path: Path, database_url: str | None, table: str) -> int:
    """Rows in ``table`` of the gateway's database, read through a store of our own."""

    async def count() -> int:
        driver = (
            PostgresDriver(database_url)
            if database_url
            else SqliteDriver(tmp_path / "data" / "imagegate.db")
        )
        store = SqlStore(driver)
        try:
            await store.connect()
            async with store.driver.reader() as conn:
                rows = await conn.fetch(f"SELECT COUNT(*) AS c FROM {table}")
            return int(rows[0]["c"])
        finally:
            await store.close()

    return asyncio.run(count())


def test_a_finished_job_is_deleted_after_its_retention(
    make_config: Any,
    upstream: GatedOpenAI,
    receiver: Receiver,
    tmp_path: Path,
    database_url: str | None,
) -> None:
    config = make_config(
        api_keys=[ADMIN],
        providers=upstream.providers(),
        fetch={"allow_private": True},
        jobs={"poll_interval_s": 0.05, "retention_s": 1},
        webhooks={"secrets": {"main": WHSEC}, "default_secret": "main", "backoff_base_s": 0.05},
    )
    receiver.statuses = [500]  # the first delivery fails: the job waits for the retry
    with LiveGateway(config) as gw:
        api = Client(gw.url, ADMIN)
        hooked = {"model": MODEL, "prompt": "a fox", "orq": {"webhook": {"url": receiver.url}}}
        r = httpx.post(
            f"{gw.url}/v2/jobs/images/edits",
            headers=api.headers,
            timeout=30,
            data={"model": MODEL, "prompt": "make it blue"},
            files={"image": ("in.png", png(7), "image/png")},
        )
        assert r.status_code == 202, r.text
        edit = r.json()["id"]
        hooked_id = api.submit(hooked).json()["id"]
        wait_until(lambda: len(receiver.got) == 2, "the webhook is delivered after a 500")
        message = Webhook(WHSEC).verify(receiver.got[-1].body, receiver.got[-1].headers)
        assert message["data"]["id"] == hooked_id and message["data"]["status"] == "succeeded"
        for job_id in (edit, hooked_id):
            gone = wait_until(lambda j=job_id: api.get(j).status_code == 404, "the job is purged")
            assert gone
        r = api.get(hooked_id)
        assert r.json()["error"]["code"] == "not_found"
        assert api.cancel(hooked_id).status_code == 404
        listed = httpx.get(f"{gw.url}/v2/jobs", headers=api.headers, timeout=10).json()
        assert listed["data"] == []
    assert upstream.calls == 2
    assert count_rows(tmp_path, database_url, "webhook_deliveries") == 0
    assert count_rows(tmp_path, database_url, "jobs") == 0

    async def image_kept() -> bytes | None:
        blobs = LocalBlobStore(tmp_path / "blobs")
        try:
            return await blobs.get(blob_key(png(0)))
        finally:
            await blobs.close()

    assert asyncio.run(image_kept()) == png(0)  # shared by key: never deleted with a job
