"""A kept answer: what a request with an idempotency key answered, small enough to store.

The record holds the status, the headers that describe the answer (model, attempts, cache)
and the JSON body with every image by reference, never base64:

- a ``b64_json`` image is replaced by the blob key of its bytes (the blob store already keeps
  every image under the SHA-256 of its bytes; we make sure it is there before the record is).
  A provider's base64 is passed through untouched, so it may not be the standard encoding of
  the bytes (line breaks, say); then the text itself is kept as a blob of its own, so the
  replay is still byte for byte what the client was first sent.
- a ``url`` image is the signed gateway URL, kept as sent, with its blob key and expiry.

``replay`` rebuilds the exact body bytes (orjson writes the same document the same way). The
one exception: a signed URL that has expired by the time of the replay would only answer 403,
so it is signed afresh (same image, same base).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
import pybase64

from ..blobs import BlobStore, URLSigner, blob_key, content_type_of
from ..blobs.signing import FILES_PATH
from ..blobs.store import OCTET_STREAM, is_blob_key
from ..errors import GatewayError
from ..gateway import ImagesResponse

KEPT_HEADERS = ("x-orq-model", "x-orq-attempts", "x-orq-cache")
# 4xx answers are kept, but not these: each says "not now", and nothing ran
RETRYABLE_4XX = frozenset({408, 409, 425, 429, 499})
INLINE_BYTES = 64 * 1024  # base64 up to this is decoded/encoded on the event loop
URL_MARGIN_S = 60  # a kept URL expiring sooner than this is signed afresh on replay
FORMAT = 1


def keeps(status: int) -> bool:
    """Whether an answer with ``status`` is kept: successes and the client's own errors."""
    return status == 200 or (400 <= status < 500 and status not in RETRYABLE_4XX)


@dataclass(slots=True)
class Kept:
    """The stored form of an answer (see the module docstring)."""

    status: int
    trace_id: str  # the request that ran; a replay's trace says "replay of" it
    headers: dict[str, str]
    body: dict[str, Any]  # ``data[i].b64_json`` emptied where ``b64`` names the image
    b64: list[tuple[int, str, str | None]] = field(default_factory=list)  # (i, key, text key)
    urls: list[tuple[int, str, str, int]] = field(default_factory=list)  # (i, key, base, exp)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "v": FORMAT,
                "status": self.status,
                "trace": self.trace_id,
                "headers": self.headers,
                "body": self.body,
                "b64": self.b64,
                "urls": self.urls,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> Kept | None:
        """The record, or None when it is not one this version wrote."""
        try:
            doc = orjson.loads(raw)
            if doc["v"] != FORMAT or not isinstance(doc["body"], dict):
                return None
            kept = cls(
                int(doc["status"]),
                str(doc["trace"]),
                {str(k): str(v) for k, v in doc["headers"].items()},
                doc["body"],
                [(int(i), str(k), None if t is None else str(t)) for i, k, t in doc["b64"]],
                [(int(i), str(k), str(b), int(e)) for i, k, b, e in doc["urls"]],
            )
            items = kept.body["data"] if kept.b64 or kept.urls else []
            indexes = [ref[0] for ref in kept.b64] + [ref[0] for ref in kept.urls]
            if not all(isinstance(items[i], dict) for i in indexes):
                return None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            return None
        return kept

    @property
    def blob_keys(self) -> list[str]:
        return [key for _, key, _ in self.b64] + [key for _, key, _, _ in self.urls]


@dataclass(slots=True)
class Replay:
    """A kept answer made sendable again."""

    status: int
    headers: dict[str, str]
    body: bytes
    trace_id: str  # of the request that ran
    blob_keys: list[str]


def kept_error(error: GatewayError, trace_id: str) -> Kept:
    return Kept(error.status, trace_id, {}, error.body())


async def kept_success(response: ImagesResponse, blobs: BlobStore) -> Kept:
    """``response`` as a record; every image it answers in base64 is in ``blobs`` after this."""
    answered = response.headers()
    headers = {name: answered[name] for name in KEPT_HEADERS if name in answered}
    body = dict(response.body)
    data = body["data"] = [dict(item) for item in response.data]
    kept = Kept(200, response.trace_id, headers, body)
    for i, item in enumerate(data):
        text = item.get("b64_json")
        if isinstance(text, str):
            key, text_key = await _keep_b64(text, blobs)
            item["b64_json"] = ""
            kept.b64.append((i, key, text_key))
        url = item.get("url")
        signed = _signed(url) if isinstance(url, str) else None
        if signed is not None:
            kept.urls.append((i, *signed))
    return kept


async def _keep_b64(text: str, blobs: BlobStore) -> tuple[str, str | None]:
    """(image key, key of the text itself when it is not the standard encoding)."""

    def digest() -> tuple[bytes, str, bool]:
        data = pybase64.b64decode(text)
        return data, blob_key(data), pybase64.b64encode_as_string(data) == text

    small = len(text) <= INLINE_BYTES
    data, key, standard = digest() if small else await asyncio.to_thread(digest)
    if not await blobs.exists(key):
        await blobs.put(key, data, content_type_of(data))
    if standard:
        return key, None
    raw = text.encode()
    text_key = blob_key(raw)
    if not await blobs.exists(text_key):
        await blobs.put(text_key, raw, OCTET_STREAM)
    return key, text_key


def _signed(url: str) -> tuple[str, str, int] | None:
    """(blob key, base URL, expiry) of a gateway-signed URL; None for any other URL."""
    base, sep, rest = url.rpartition(FILES_PATH)
    key, _, query = rest.partition("?")
    expires = parse_qs(query).get("expires", [""])[0]
    if not sep or not is_blob_key(key) or not expires.isdigit():
        return None
    return key, base, int(expires)


async def replay(
    kept: Kept, blobs: BlobStore, signer: URLSigner, now: float | None = None
) -> Replay | None:
    """The answer's exact bytes again; None when an image it names has left the blob store."""
    now = time.time() if now is None else now
    data: list[dict[str, Any]] = kept.body.get("data") or []
    for i, key, text_key in kept.b64:
        raw = await blobs.get(text_key or key)
        if raw is None:
            return None
        if text_key is not None:
            data[i]["b64_json"] = raw.decode()
        elif len(raw) <= INLINE_BYTES:
            data[i]["b64_json"] = pybase64.b64encode_as_string(raw)
        else:
            data[i]["b64_json"] = await asyncio.to_thread(pybase64.b64encode_as_string, raw)
    for i, key, base, expires in kept.urls:
        if not await blobs.exists(key):
            return None
        if expires < now + URL_MARGIN_S:
            data[i]["url"] = signer.url(base, key, now=now)
    body = orjson.dumps(kept.body)
    return Replay(kept.status, dict(kept.headers), body, kept.trace_id, kept.blob_keys)
