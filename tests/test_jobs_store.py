"""The job queue in the store (SQLite and PostgreSQL) and job uploads in the blob stores."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from databases import fresh_schema
from jobkit import png
from moto.server import ThreadedMotoServer
from waiting import DEADLINE_S, until

from imagegate.blobs import BlobStore, LocalBlobStore, S3BlobStore, blob_key
from imagegate.config import StorageConfig
from imagegate.jobs.inputs import InputsLost, delete_inputs, load_inputs, save_inputs
from imagegate.request import UploadedFile
from imagegate.store import SqlStore, StoreUnavailable
from imagegate.store.jobrecords import Job, QueueFull
from imagegate.store.postgres import PostgresDriver
from imagegate.store.sqlite import SqliteDriver

NOW = 1_700_000_000.0


def opener(tmp_path: Path, database_url: str | None) -> Any:
    def open_one() -> SqlStore:
        if database_url is None:
            return SqlStore(SqliteDriver(tmp_path / "imagegate.db"))
        return SqlStore(PostgresDriver(database_url))

    return open_one


@pytest.fixture
async def stores(tmp_path: Path, database_url: str | None) -> AsyncIterator[list[SqlStore]]:
    """Two stores over one database: two replicas, each with its own connections."""
    made = [opener(tmp_path, database_url)() for _ in range(2)]
    yield made
    for store in made:
        await store.close()


def job(workspace: str, n: int, webhook: bool = False) -> Job:
    return Job(
        id=f"job_{NOW + n:020.3f}",
        workspace_id=workspace,
        operation="generations",
        status="queued",
        body={"model": "m", "prompt": str(n)},
        inputs=[],
        caller={"role": "member", "key_id": None},
        created_at=NOW + n,
        updated_at=NOW + n,
        webhook_url="https://example.com/h" if webhook else None,
        webhook_secret_id="main" if webhook else None,
    )


def run_of(owner: str) -> Any:
    return lambda j: {
        "run": j.runs + 1,
        "worker": owner,
        "trace_id": f"t{j.runs}",
        "started_at": NOW,
        "ended_at": None,
        "outcome": None,
    }


async def claim(store: SqlStore, owner: str, now: float, limit: int, **kw: Any) -> list[Job]:
    options = {"max_running": 3, "max_runs": 3, **kw}
    return await store.claim_jobs(owner, now, 10.0, limit, new_run=run_of(owner), **options)


async def test_replicas_claiming_at_once_share_the_workspace_bound(
    stores: list[SqlStore],
) -> None:
    one, two = stores
    for n in range(10):
        await one.insert_job(job("a", n), 100)
    for n in range(10, 12):
        await one.insert_job(job("b", n), 100)
    got = await asyncio.gather(*(claim(s, f"w{i}", NOW + 20, 8) for i, s in enumerate(stores)))
    claimed = [j for batch in got for j in batch]
    assert len({j.id for j in claimed}) == len(claimed)  # nobody's job twice
    by_ws = sorted(j.workspace_id for j in claimed)
    assert by_ws == ["a", "a", "a", "b", "b"]
    assert all(j.status == "running" and j.runs == 1 for j in claimed)
    assert await claim(two, "w9", NOW + 21, 8) == []  # both workspaces busy or empty
    page = await one.list_jobs("a", "running", None, 50)
    assert len(page.items) == 3


async def test_a_lapsed_lease_is_run_again_and_the_old_run_can_no_longer_finish(
    stores: list[SqlStore],
) -> None:
    one, two = stores
    await one.insert_job(job("a", 0, webhook=True), 100)
    [first] = await claim(one, "old", NOW, 1)
    assert await one.renew_job(first, "old", NOW + 15)
    assert await claim(two, "new", NOW + 14, 1) == []  # the lease holds
    [second] = await claim(two, "new", NOW + 16, 1)  # lapsed
    assert second.runs == 2 and [r["outcome"] for r in second.run_log] == ["lost", None]
    assert not await one.renew_job(first, "old", NOW + 30)
    first.status, first.http_status = "succeeded", 200
    assert await one.finish_job(first, "old", NOW + 17) is None
    assert await two.get_delivery("a", second.id) is None  # no message until it ends
    second.status, second.http_status, second.result = "succeeded", 200, {"data": []}
    assert await two.finish_job(second, "new", NOW + 18) is not None
    stored = await one.get_job("a", second.id)
    assert stored is not None and stored.status == "succeeded" and stored.runs == 2
    delivery = await one.get_delivery("a", second.id)
    assert delivery is not None and delivery.status == "pending"
    assert await one.finish_job(second, "new", NOW + 19) is None  # once only


async def test_a_job_whose_every_run_was_lost_fails_with_its_message(
    stores: list[SqlStore],
) -> None:
    one, _ = stores
    await one.insert_job(job("a", 0, webhook=True), 100)
    now = NOW
    for _ in range(2):
        now += 20
        assert len(await claim(one, f"w{now}", now, 1, max_runs=2)) == 1
    assert await claim(one, "last", now + 20, 1, max_runs=2) == []
    failed = await one.get_job("a", job("a", 0).id)
    assert failed is not None and failed.status == "failed" and failed.http_status == 500
    assert failed.error is not None and failed.error["error"]["code"] == "job_worker_lost"
    assert [r["outcome"] for r in failed.run_log] == ["lost", "lost"]
    assert await one.get_delivery("a", failed.id) is not None


async def test_the_queue_bound_and_cancel(stores: list[SqlStore]) -> None:
    one, _ = stores
    for n in range(2):
        await one.insert_job(job("a", n), 2)
    with pytest.raises(QueueFull):
        await one.insert_job(job("a", 2), 2)
    await one.insert_job(job("b", 3), 2)  # each workspace its own queue
    cancelled = await one.cancel_job("a", job("a", 0).id, NOW)
    assert cancelled is not None and cancelled[1] and cancelled[0].status == "cancelled"
    again = await one.cancel_job("a", job("a", 0).id, NOW)
    assert again is not None and not again[1]
    assert await one.cancel_job("b", job("a", 1).id, NOW) is None  # not b's
    await one.insert_job(job("a", 4), 2)  # a cancelled job no longer counts


async def test_purge_takes_finished_jobs_past_retention_and_their_deliveries(
    stores: list[SqlStore],
) -> None:
    one, two = stores
    unfinished, hooked, cancelled, done = (
        job("a", 0),
        job("a", 1, webhook=True),
        job("a", 2),
        job("b", 3),
    )
    cancelled.inputs = [
        {"field": "image", "filename": "a.png", "kind": "png", "size": 1, "key": "k" * 64}
    ]
    for j in (unfinished, hooked, cancelled, done):
        await one.insert_job(j, 100)
    await one.cancel_job("a", cancelled.id, NOW + 5)
    running = {j.id: j for j in await claim(one, "w", NOW + 6, 4)}
    for j, ended in ((running[hooked.id], NOW + 10), (running[done.id], NOW + 20)):
        j.status, j.http_status, j.result = "succeeded", 200, {"data": []}
        assert await one.finish_job(j, "w", ended) is not None
    assert await two.purge_jobs(NOW + 5, 10) == {}  # nothing ended before the cutoff
    assert await two.purge_jobs(NOW + 100, 1) == {cancelled.id: cancelled.inputs}  # oldest
    assert await one.get_job("a", cancelled.id) is None
    assert list(await two.purge_jobs(NOW + 100, 10)) == [done.id]  # hooked: message pending
    [message] = await one.claim_deliveries("s", NOW + 30, 10.0, 5)
    assert message.job_id == hooked.id
    message.status = "delivered"
    assert await one.record_delivery(message, "s")
    assert list(await two.purge_jobs(NOW + 100, 10)) == [hooked.id]
    assert await one.get_delivery("a", hooked.id) is None
    assert await one.get_job("a", hooked.id) is None
    assert await one.get_job("a", unfinished.id) is not None  # an unfinished job is never purged
    assert [j.id for j in (await one.list_jobs("a", None, None, 10)).items] == [unfinished.id]


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


async def test_a_claim_takes_the_next_job_while_another_claim_holds_a_row(pg_url: str) -> None:
    """PostgreSQL: a claimer skips rows another claim has locked instead of waiting for it.

    The first claim (in a thread of its own, on its own connection) stops inside its
    transaction — rows locked — until the test lets it go; the second must return the next
    job while the first transaction is still open (an ordering fact). Without ``SKIP LOCKED``
    it waits on the first job's row lock and the deadline fails the test.
    """
    first, second = job("a", 0), job("b", 1)  # two workspaces: each claim its own advisory lock
    setup = SqlStore(PostgresDriver(pg_url))
    for j in (first, second):
        await setup.insert_job(j, 100)
    inside, let_go = threading.Event(), threading.Event()

    def stop_inside(j: Job) -> dict[str, Any]:  # runs inside the first claim's transaction
        inside.set()
        let_go.wait(DEADLINE_S)
        return run_of("holder")(j)

    async def hold() -> list[Job]:
        store = SqlStore(PostgresDriver(pg_url))
        try:
            return await store.claim_jobs(
                "holder", NOW + 1, 10.0, 1, max_running=3, max_runs=3, new_run=stop_inside
            )
        finally:
            await store.close()

    holder = asyncio.get_running_loop().run_in_executor(None, asyncio.run, hold())
    try:
        await until(inside.is_set, "the first claim holds its row")
        try:
            took = await asyncio.wait_for(claim(setup, "other", NOW + 1, 1), DEADLINE_S)
        except (TimeoutError, StoreUnavailable) as exc:  # the driver's own timeout, or ours
            pytest.fail(f"the second claim waited for the first one's row lock ({exc!r})")
        assert not let_go.is_set() and not holder.done()  # the first is still open
    finally:
        let_go.set()
        held = await holder
        await setup.close()
    assert [j.id for j in held] == [first.id] and [j.id for j in took] == [second.id]
    assert held[0].lease_owner == "holder" and took[0].lease_owner == "other"


# --- uploads in the blob stores ---------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["files", "pack", "s3"])
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    store: BlobStore
    if request.param == "s3":
        url = request.getfixturevalue("moto_url")
        bucket = f"imagegate-{uuid.uuid4().hex[:12]}"
        boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        store = S3BlobStore(
            StorageConfig(
                backend="s3",
                bucket=bucket,
                endpoint_url=url,
                region="us-east-1",
                access_key_id="testing",
                secret_access_key="testing",
            )
        )
    else:
        store = LocalBlobStore(tmp_path, pack_max_bytes=0 if request.param == "files" else 65536)
    yield store
    await store.close()


async def test_uploads_are_kept_apart_from_the_same_image_and_deleted(blobs: BlobStore) -> None:
    image = png(5)
    await blobs.put(blob_key(image), image, "image/png")  # the same bytes, as an answer
    uploads = [
        UploadedFile.from_bytes(image, "a.png"),
        UploadedFile("mask", "m.png", "png", len(png(6)), data=png(6)),
    ]
    kept = await save_inputs(blobs, "job_1", uploads)
    assert all(k["key"] != blob_key(image) for k in kept)
    images, mask = await load_inputs(blobs, "job_1", kept)
    assert [i.read_bytes() for i in images] == [image] and mask is not None
    assert mask.read_bytes() == png(6) and mask.field == "mask"
    with pytest.raises(InputsLost):
        await load_inputs(blobs, "job_2", kept)  # another job's key is not this job's upload
    await delete_inputs(blobs, kept)
    assert [await blobs.get(k["key"]) for k in kept] == [None, None]
    assert await blobs.get(blob_key(image)) == image  # the answer stays
    with pytest.raises(InputsLost):
        await load_inputs(blobs, "job_1", kept)
    await delete_inputs(blobs, kept)  # twice is fine
