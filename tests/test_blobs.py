"""Blob stores (local directory, S3 against a real moto server), signed URLs, signing keys."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from blobprocs import SPAWN, read_back, write_many
from imagekit import png
from live import live_gateway
from moto.server import ThreadedMotoServer

from imagegate.blobs import (
    BlobStoreError,
    LocalBlobStore,
    S3BlobStore,
    URLSigner,
    blob_key,
    content_type_of,
    decode_data_uri,
    direct,
    is_blob_key,
    load_signing_key,
)
from imagegate.blobs.fetch import FetchError
from imagegate.config import StorageConfig

PNG = png("blob")
KEY = blob_key(PNG)


# --- keys and content types ----------------------------------------------------------------
def test_keys_are_sha256_of_the_bytes() -> None:
    assert KEY == hashlib.sha256(PNG).hexdigest()
    assert is_blob_key(KEY)
    for bad in ("../etc/passwd", KEY.upper(), KEY[:-1], KEY + "0", ""):
        assert not is_blob_key(bad)


def test_content_type_sniffed_then_hinted() -> None:
    assert content_type_of(PNG) == "image/png"
    assert content_type_of(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert content_type_of(b"GIF89a...", "image/gif") == "image/gif"
    assert content_type_of(b"<html>", "text/html") == "application/octet-stream"


def test_data_uris_decode() -> None:
    data, mime = decode_data_uri("data:image/png;base64," + base64.b64encode(PNG).decode())
    assert (data, mime) == (PNG, "image/png")
    assert decode_data_uri("data:text/plain,a%20b") == (b"a b", "text/plain")
    with pytest.raises(FetchError):
        decode_data_uri("data:image/png;base64")


# --- local ----------------------------------------------------------------------------------
async def test_local_store_roundtrip_and_idempotent(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs", pack_max_bytes=0)  # every blob a file
    assert await store.get(KEY) is None
    assert not await store.exists(KEY)
    await store.put(KEY, PNG, "image/png")
    await store.put(KEY, PNG, "image/png")  # stored once
    assert await store.get(KEY) == PNG
    assert await store.exists(KEY)
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert files == [tmp_path / "blobs" / KEY[:2] / KEY]
    with pytest.raises(ValueError):
        store.path_for("../../x")


async def test_small_blobs_are_packed_and_shared_between_processes(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root, pack_max_bytes=4096)
    big = PNG + os.urandom(5000)
    big_key = hashlib.sha256(big).hexdigest()
    assert await store.get(KEY) is None and not await store.exists(KEY)
    await store.put(KEY, PNG, "image/png")
    await store.put(KEY, PNG, "image/png")  # stored once (INSERT OR IGNORE)
    await store.put(big_key, big, "image/png")
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert f"{big_key[:2]}/{big_key}" in files  # over the limit: a file
    assert not any(KEY in f for f in files)  # the small one: a row of pack.db, no file
    assert "pack.db" in files
    # Another worker process (its own interpreter, store object and connections) reads both
    # while this one still has the pack open.
    [(status, pid, found)] = run_in_processes(read_back, [(str(root), [KEY, big_key])])
    await store.close()
    assert status == "ok", found
    assert pid != os.getpid()
    assert found == {KEY: PNG, big_key: big}
    with sqlite3.connect(root / "pack.db") as db:
        assert db.execute("SELECT count(*) FROM blobs").fetchone() == (1,)


def run_in_processes(target: Any, args: list[tuple[Any, ...]]) -> list[tuple[str, int, Any]]:
    """Run ``target(*a, queue)`` in one spawned process per ``a``; their reports, in any order."""
    out = SPAWN.Queue()
    procs = [SPAWN.Process(target=target, args=(*a, out)) for a in args]
    for proc in procs:
        proc.start()
    try:
        reports = [out.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    assert [proc.exitcode for proc in procs] == [0] * len(procs)
    return reports


async def test_an_unwritable_pack_is_a_blob_store_error(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    root.mkdir()
    (root / "pack.db").mkdir()  # a directory where the database should be
    store = LocalBlobStore(root)
    with pytest.raises(BlobStoreError):
        await store.put(KEY, PNG, "image/png")


@pytest.mark.parametrize(
    "size", [256 * 1024, 1024 * 1024, 1024 * 1024 + 1, 2 * 1024 * 1024 + 4095, 5_000_001]
)
async def test_local_store_cold_writes_bypass_the_page_cache_byte_exact(
    tmp_path: Path, size: int
) -> None:
    data = PNG + os.urandom(size - len(PNG))
    key = hashlib.sha256(data).hexdigest()
    store = LocalBlobStore(tmp_path / "blobs")
    probe = direct.open_direct(str(tmp_path / "probe"))  # can this filesystem do it at all?
    if probe is not None:
        os.close(probe)
    await store.put(key, data, "image/png", cold=True)
    assert store.direct_writes == (1 if probe is not None else 0)  # used whenever possible
    assert await store.get(key) == data  # padding cut off, nothing lost at chunk edges
    assert [p.name for p in (tmp_path / "blobs" / key[:2]).iterdir()] == [key]  # no temp left


async def test_local_store_without_direct_io_writes_normally(tmp_path: Path) -> None:
    data = PNG + os.urandom(400_000)
    key = hashlib.sha256(data).hexdigest()
    store = LocalBlobStore(tmp_path / "blobs", direct_io=False)
    await store.put(key, data, "image/png", cold=True)
    assert store.direct_writes == 0
    assert await store.get(key) == data


async def test_local_store_write_failure_is_a_blob_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = LocalBlobStore(blocker)
    with pytest.raises(BlobStoreError):
        await store.put(KEY, PNG, "image/png")


# --- S3 (a real S3-compatible server on 127.0.0.1) ------------------------------------------
@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_config(url: str, bucket: str, **extra: Any) -> StorageConfig:
    return StorageConfig(
        backend="s3",
        bucket=bucket,
        endpoint_url=url,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        **extra,
    )


def make_bucket(url: str) -> tuple[Any, str]:
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = f"imagegate-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


async def test_s3_store_roundtrip(moto_url: str) -> None:
    client, bucket = make_bucket(moto_url)
    store = S3BlobStore(s3_config(moto_url, bucket, prefix="img/"))
    try:
        assert await store.get(KEY) is None
        assert not await store.exists(KEY)
        await store.put(KEY, PNG, "image/png")
        assert await store.exists(KEY)
        assert await store.get(KEY) == PNG
        head = client.head_object(Bucket=bucket, Key=f"img/{KEY}")
        assert head["ContentType"] == "image/png"
        assert head["ContentLength"] == len(PNG)
    finally:
        await store.close()


async def test_s3_missing_bucket_and_dead_endpoint_are_blob_store_errors(moto_url: str) -> None:
    store = S3BlobStore(s3_config(moto_url, "no-such-bucket-imagegate"))
    dead = S3BlobStore(s3_config("http://127.0.0.1:9", "b"))
    try:
        with pytest.raises(BlobStoreError):
            await store.put(KEY, PNG, "image/png")
        with pytest.raises(BlobStoreError):
            await dead.get(KEY)
    finally:
        await store.close()
        await dead.close()


def test_gateway_serves_images_from_s3(make_config: Any, moto_url: str) -> None:
    client, bucket = make_bucket(moto_url)
    storage = s3_config(moto_url, bucket).model_dump()
    with live_gateway(make_config(storage=storage)) as gw:
        r = httpx.post(
            f"{gw.url}/v2/router/images/generations",
            json={
                "model": "placeholder/x",
                "prompt": "s3",
                "size": "32x32",
                "response_format": "url",
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        image = httpx.get(r.json()["data"][0]["url"], timeout=10)
    assert image.status_code == 200
    key = blob_key(image.content)
    stored = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == image.content
    assert image.headers["content-type"] == "image/png"


# --- signed URLs ----------------------------------------------------------------------------
def test_signed_url_shape_and_verification() -> None:
    signer = URLSigner(b"secret", ttl_s=3600)
    url = signer.url("http://gw.test/", KEY, now=1_000_000)
    assert url.startswith(f"http://gw.test/v2/files/{KEY}?expires=1003600&sig=")
    sig = httpx.URL(url).params["sig"]
    assert signer.verify(KEY, "1003600", sig, now=1_000_000)
    assert signer.verify(KEY, "1003600", sig, now=1_003_600)  # valid up to the second
    assert not signer.verify(KEY, "1003600", sig, now=1_003_601)  # expired
    assert not signer.verify(KEY, "1003601", sig, now=1_000_000)  # tampered expiry
    assert not signer.verify(KEY, "1003600", sig[:-1] + "0", now=1_000_000)  # tampered sig
    assert not signer.verify(blob_key(b"other"), "1003600", sig, now=1_000_000)  # wrong key
    assert not URLSigner(b"other").verify(KEY, "1003600", sig, now=1_000_000)  # other secret
    assert not signer.verify(KEY, None, sig, now=1_000_000)
    assert not signer.verify(KEY, "-5", sig, now=1_000_000)
    assert not signer.verify(KEY, "1003600", None, now=1_000_000)


def test_signing_key_generated_once_with_mode_0600(make_config: Any, tmp_path: Path) -> None:
    config = make_config(data_dir=str(tmp_path / "d"))
    first = load_signing_key(config)
    path = tmp_path / "d" / "signing.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) == 64
    assert load_signing_key(config) == first  # survives a restart
    assert load_signing_key(make_config(data_dir=str(tmp_path / "e"))) != first
    assert load_signing_key(make_config(signing_key="from-config")) == b"from-config"


async def test_concurrent_workers_agree_on_one_signing_key(
    make_config: Any, tmp_path: Path
) -> None:
    config = make_config(data_dir=str(tmp_path / "race"))
    keys = await asyncio.gather(*(asyncio.to_thread(load_signing_key, config) for _ in range(8)))
    assert len(set(keys)) == 1


def test_s3_without_a_bucket_is_a_config_error() -> None:
    from imagegate.blobs import make_store
    from imagegate.config import ConfigError

    with pytest.raises(ConfigError, match=r"storage\.bucket"):
        make_store(StorageConfig(backend="s3"))


def test_a_fresh_pack_takes_concurrent_first_writes_from_threads_and_processes(
    tmp_path: Path,
) -> None:
    """Many writers at once on a pack that does not exist yet: two worker processes with 24
    threads each, released together. None may fail with 'database is locked'."""
    root = tmp_path / "blobs"
    blobs = [PNG + os.urandom(100) for _ in range(48)]
    start = SPAWN.Barrier(2)
    reports = run_in_processes(
        write_many, [(str(root), blobs[0::2], start), (str(root), blobs[1::2], start)]
    )
    assert [(status, errors) for status, _, errors in reports] == [("ok", [])] * 2
    assert len({pid for _, pid, _ in reports} | {os.getpid()}) == 3  # two other processes
    store = LocalBlobStore(root)
    for blob in blobs:
        assert asyncio.run(store.get(hashlib.sha256(blob).hexdigest())) == blob


def test_a_read_leaves_no_snapshot_behind_that_would_block_a_later_write(tmp_path: Path) -> None:
    """A read must end its transaction: a stale WAL snapshot on this thread's connection
    would make its next write fail at once with 'database is locked' (and stall checkpoints)."""
    root = tmp_path / "blobs"
    mine, other = LocalBlobStore(root), LocalBlobStore(root)
    first, second, third = (PNG + bytes([i]) * 50 for i in range(3))
    mine.put_sync(blob_key(first), first)
    assert mine._read(blob_key(first)) == first  # a read on this thread's connection
    other.put_sync(blob_key(second), second)  # another connection commits meanwhile
    mine.put_sync(blob_key(third), third)  # must not fail
    assert mine._read(blob_key(second)) == second and mine._read(blob_key(third)) == third


async def test_s3_background_copies_take_the_one_archive_path(
    moto_url: str, make_config: Any
) -> None:
    """A base64 answer on S3 is archived like on the local backend: by the archive threads
    through ``BlobStore.put_sync`` (with its content type); a copy that cannot be written is
    counted once, in the counter /metrics shows."""
    from imagegate.output import Output
    from imagegate.request import GeneratedImage, ImageResult

    client, bucket = make_bucket(moto_url)
    data = PNG + os.urandom(3000)
    answer = ImageResult(images=[GeneratedImage(b64=base64.b64encode(data).decode())])
    up = Output(make_config(), store=S3BlobStore(s3_config(moto_url, bucket)))
    down = Output(make_config(), store=S3BlobStore(s3_config("http://127.0.0.1:9", "b")))
    try:
        served = await up.prepare(answer, "b64_json", model="m")
        assert served.pending is not None
        await served.pending
        assert served.blob_keys() == [blob_key(data)] and up.archive.written == 1
        stored = client.get_object(Bucket=bucket, Key=blob_key(data))
        assert stored["Body"].read() == data and stored["ContentType"] == "image/png"
        failed = await down.prepare(answer, "b64_json", model="m")
        assert failed.pending is not None
        await failed.pending
        assert failed.blob_keys() == [] and down.background_failures == 1
    finally:
        await up.close()
        await down.close()
