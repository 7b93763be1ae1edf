"""A job's images answer kept by blob key, and given back in either format.

The synchronous route answers once; a job is read any number of times, for hours. So its
answer is kept without base64: each image by the key of its bytes in the blob store (the
image the answer named, already stored for a URL, or decoded and stored here for base64),
and on every read it is rebuilt as asked — a freshly signed URL, or base64 read back from the
store.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pybase64

from ..blobs import BlobStoreError, blob_key, content_type_of, is_blob_key
from ..blobs.signing import FILES_PATH
from ..errors import ServiceUnavailable
from ..output import Output


class ResultLost(Exception):
    """An image of a finished job is gone from the blob store."""


def _key_of_url(url: str) -> str | None:
    path = urlsplit(url).path
    _, _, key = path.rpartition(FILES_PATH)
    return key if is_blob_key(key) else None


async def keep_result(output: Output, body: dict[str, Any]) -> dict[str, Any]:
    """The synchronous answer ``body`` with each image as ``{key, source}`` (no base64)."""
    kept: list[dict[str, Any]] = []
    for item in body.get("data", []):
        entry: dict[str, Any]
        if "url" in item:
            key = _key_of_url(item["url"])
            if key is None:
                raise RuntimeError("an image URL that is not the gateway's")
            entry = {"key": key, "source": "url"}
        else:
            data = await asyncio.to_thread(pybase64.b64decode, item["b64_json"])
            key = blob_key(data)
            try:
                if not await output.store.exists(key):
                    await output.store.put(key, data, content_type_of(data))
            except BlobStoreError as exc:
                raise ServiceUnavailable(f"the image store is unavailable: {exc}") from None
            entry = {"key": key, "source": "b64_json"}
        if item.get("revised_prompt") is not None:
            entry["revised_prompt"] = item["revised_prompt"]
        kept.append(entry)
    return {**{k: v for k, v in body.items() if k != "data"}, "data": kept}


async def render_result(
    output: Output, result: dict[str, Any], want: str | None, base_url: str
) -> dict[str, Any]:
    """The images answer as the synchronous route gives it, in ``want`` (None: as served)."""
    base = base_url or output.default_base_url
    items: list[dict[str, Any]] = []
    for entry in result.get("data", []):
        key = entry["key"]
        item: dict[str, Any]
        if (want or entry.get("source")) == "url":
            item = {"url": output.signer.url(base, key)}
        else:
            try:
                data = await output.store.get(key)
            except BlobStoreError as exc:
                raise ServiceUnavailable(f"the image store is unavailable: {exc}") from None
            if data is None:
                raise ResultLost(key)
            item = {"b64_json": await asyncio.to_thread(pybase64.b64encode_as_string, data)}
        if entry.get("revised_prompt") is not None:
            item["revised_prompt"] = entry["revised_prompt"]
        items.append(item)
    body = {k: v for k, v in result.items() if k not in ("data", "served")}
    body["data"] = items
    return body
