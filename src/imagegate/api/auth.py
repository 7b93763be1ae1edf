"""Bearer API keys, compared in constant time; each configured in clear or as ``sha256:<hex>``."""

from __future__ import annotations

import hashlib
import hmac

from ..errors import AuthenticationRequired, InvalidApiKey


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_id(key: str) -> str:
    """A stable, non-secret id for an API key (traces and cache scoping)."""
    return "key_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


class Authenticator:
    def __init__(self, keys: list[str]) -> None:
        self._digests: list[tuple[bytes, str]] = []
        for key in keys:
            if key.startswith("sha256:"):
                digest = bytes.fromhex(key[7:])
                ident = "key_" + key[7:23].lower()  # same id as the key given in clear
            else:
                digest = key_digest(key)
                ident = key_id(key)
            self._digests.append((digest, ident))

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def check(self, authorization: str | None) -> str | None:
        """The caller's key id; None when auth is off. Raises 401 on a missing or bad key."""
        if not self._digests:
            return None
        if not authorization:
            raise AuthenticationRequired("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationRequired("the Authorization header must be 'Bearer <key>'")
        presented = key_digest(token)
        found: str | None = None
        for digest, ident in self._digests:  # no early exit: same work for every key
            if hmac.compare_digest(presented, digest):
                found = ident
        if found is None:
            raise InvalidApiKey("invalid API key")
        return found
