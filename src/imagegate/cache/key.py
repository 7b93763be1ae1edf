"""The canonical exact-match key (docs/images-and-cache.md).

SHA-256 over canonical JSON (sorted keys, every field always present) of: the operation, the
routing target (``model``, or the set of load-balancer models), every parameter that shapes
the image, and the SHA-256 of every uploaded file in order — scoped by the caller's API key.
Which request fields are in is the parameter table's ``key`` column (``request.Param``). Left
out on purpose: name, identity/contact, thread, metadata, user, retry, timeout, fallbacks,
cache.ttl and response_format (one stored image answers either format). ``seed`` is in: it is
sent to the provider and changes the picture. ``n`` is normalised (absent means 1), since
every provider defaults it so.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson

from ..request import KEY_FIELDS, ImageRequest

KEY_VERSION = 1
# Key fields with a rule of their own in ``canonical``; every other field the parameter table
# marks ``key`` goes in by value (so a new keyed parameter cannot be left out of the key).
OWN_RULE: frozenset[str] = frozenset({"operation", "model", "options", "n", "images", "mask"})
if not OWN_RULE <= set(KEY_FIELDS):  # a rule for a field the table no longer keys
    raise TypeError(f"cache key rules for unkeyed fields: {sorted(OWN_RULE - set(KEY_FIELDS))}")
KEY_PARAMS: tuple[str, ...] = tuple(name for name in KEY_FIELDS if name not in OWN_RULE)
# Keyed parameters added after KEY_VERSION 1: in the document only when given, so every key
# made before they existed stays the same.
SINCE_V1: frozenset[str] = frozenset({"input_fidelity"})


def routing_target(request: ImageRequest) -> dict[str, Any]:
    """``model``, or the sorted set of load-balancer models (the request's model is ignored)."""
    balancer = request.options.load_balancer
    if balancer is not None:
        return {"load_balancer": sorted({entry.model for entry in balancer.models})}
    return {"model": request.model}


def canonical(request: ImageRequest, scope: str | None) -> dict[str, Any]:
    """The JSON document the key hashes (exposed for tests and debugging)."""
    doc: dict[str, Any] = {
        "v": KEY_VERSION,
        "scope": scope or "",
        "operation": request.operation,
        "n": request.n_images,
        "images": [upload.digest() for upload in request.images],
        "mask": request.mask.digest() if request.mask is not None else None,
        **routing_target(request),
    }
    for name in KEY_PARAMS:
        value = getattr(request, name)
        if value is not None or name not in SINCE_V1:
            doc[name] = value
    return doc


INLINE_HASH_BYTES = 64 * 1024  # uploads up to this are hashed on the event loop


async def digest_uploads(request: ImageRequest) -> None:
    """Hash the uploads the key needs, off the event loop unless they are small."""
    uploads = [*request.images, *([request.mask] if request.mask is not None else [])]
    todo = [upload for upload in uploads if upload.sha256 is None]
    if sum(upload.size for upload in todo) <= INLINE_HASH_BYTES:
        for upload in todo:
            upload.digest()
    elif todo:
        await asyncio.to_thread(lambda: [upload.digest() for upload in todo])


def cache_key(request: ImageRequest, scope: str | None) -> str:
    """Hex SHA-256 of the canonical document."""
    blob = orjson.dumps(canonical(request, scope), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()
