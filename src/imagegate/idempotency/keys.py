"""The ``Idempotency-Key`` header and the fingerprint of the body it was sent with.

A key is what the client chose (1-255 printable ASCII characters, Stripe's convention), scoped
by the caller's workspace: the same key in two workspaces names two records. The fingerprint
says whether a retry is "the same request": the exact-match cache key's canonical document
(``cache/key.py``: key order, absent ``n``, uploads by SHA-256) plus every body field the
cache key leaves out on purpose (``response_format``, ``user``, ``metadata``, every ``orq``
option...), since a replay must be the answer to this very body.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from ..cache.key import canonical, digest_uploads
from ..errors import InvalidRequest
from ..request import BODY_FIELDS, KEY_FIELDS, ImageRequest

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
# the body fields the cache key leaves out; a retry must match them too
EXTRA_FIELDS: tuple[str, ...] = tuple(n for n in BODY_FIELDS if n not in KEY_FIELDS)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose key: records never cross workspaces."""

    workspace: str
    key: str

    @property
    def digest(self) -> str:
        """A fixed-length name for the pair (Redis keys, logs): never the key itself."""
        raw = f"{self.workspace}\n{self.key}".encode()
        return hashlib.sha256(raw).hexdigest()


def check_key(value: str | None) -> str | None:
    """The header's value when it is a usable key; None when absent; else a 400."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY_CHARS:
        raise InvalidRequest(f"{HEADER}: 1 to {MAX_KEY_CHARS} characters", param=HEADER)
    if not all(" " <= c <= "~" for c in value):
        raise InvalidRequest(f"{HEADER}: printable ASCII characters only", param=HEADER)
    return value


async def fingerprint(request: ImageRequest, workspace: str) -> str:
    """Hex SHA-256 of the canonical body (uploads hashed off the event loop when large)."""
    await digest_uploads(request)
    doc = canonical(request, workspace)
    for name in EXTRA_FIELDS:
        doc[f"body.{name}"] = getattr(request, name)
    doc["body.metadata"] = request.metadata
    doc["body.orq"] = request.options.model_dump(mode="json", exclude_none=True)
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
