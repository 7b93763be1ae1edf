"""The uploads of a multipart job, kept in the blob store until the job ends.

The blob store is content-addressed and images in it are shared (an edit of an image the
gateway made uploads the very bytes of that answer), so an upload is not stored under the
key of its own bytes — deleting it would delete the answer too. It is stored wrapped: a
header naming the job, then the bytes. The key (the hash of the wrapped bytes) is then this
job's alone, every backend's content check still holds (S3 signs the payload hash), and
the job deletes it when it ends. Nothing signs a URL for such a key, so ``/v2/files`` never
serves one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..blobs import BlobStore, BlobStoreError, blob_key
from ..errors import ServiceUnavailable
from ..request import UploadedFile, sniff_image

log = logging.getLogger("imagegate.jobs")
MAGIC = b"imagegate-job-input\n"
OCTET_STREAM = "application/octet-stream"


class InputsLost(Exception):
    """An upload of the job is gone from the blob store (or is not what was stored)."""


def _wrap(job_id: str, data: bytes) -> bytes:
    return MAGIC + job_id.encode("ascii") + b"\n" + data


def _unwrap(job_id: str, wrapped: bytes) -> bytes:
    header = MAGIC + job_id.encode("ascii") + b"\n"
    if not wrapped.startswith(header):
        raise InputsLost("a stored upload does not belong to this job")
    return wrapped[len(header) :]


async def save_inputs(
    store: BlobStore, job_id: str, uploads: list[UploadedFile]
) -> list[dict[str, Any]]:
    """Store each upload (image, then mask) for ``job_id``; their descriptions for the row."""
    out: list[dict[str, Any]] = []
    try:
        for upload in uploads:
            data = (
                await asyncio.to_thread(upload.read_bytes) if upload.data is None else upload.data
            )
            wrapped = _wrap(job_id, data)
            key = blob_key(wrapped)
            await store.put(key, wrapped, OCTET_STREAM)
            out.append(
                {
                    "field": upload.field,
                    "filename": upload.filename,
                    "kind": upload.kind,
                    "size": upload.size,
                    "key": key,
                }
            )
    except BlobStoreError as exc:
        log.error("job %s: cannot store its uploads: %s", job_id, exc)
        await delete_inputs(store, out)
        raise ServiceUnavailable("the image store is unavailable; try again") from None
    return out


async def load_inputs(
    store: BlobStore, job_id: str, inputs: list[dict[str, Any]]
) -> tuple[list[UploadedFile], UploadedFile | None]:
    """The job's images and mask, in memory, exactly as uploaded."""
    images: list[UploadedFile] = []
    mask: UploadedFile | None = None
    for item in inputs:
        wrapped = await store.get(item["key"])
        if wrapped is None:
            raise InputsLost(f"upload {item['filename']!r} is gone from the blob store")
        data = _unwrap(job_id, wrapped)
        kind = sniff_image(data[:16])
        if kind is None or len(data) != item["size"]:
            raise InputsLost(f"upload {item['filename']!r} changed in the blob store")
        upload = UploadedFile(item["field"], item["filename"], kind, len(data), data=data)
        if item["field"] == "mask":
            mask = upload
        else:
            images.append(upload)
    return images, mask


async def delete_inputs(store: BlobStore, inputs: list[dict[str, Any]]) -> None:
    """Remove the job's uploads; a failure is logged (the blobs are orphans, nothing more)."""
    for item in inputs:
        try:
            await store.delete(item["key"])
        except BlobStoreError as exc:
            log.warning("could not delete a job upload (%s): %s", item["key"], exc)
