"""Who is calling: bearer keys → a ``Principal`` (workspace, role, key) before anything else.

Two kinds of key:

- **config keys** (``api_keys``, ``IMAGEGATE_API_KEYS``; clear or ``sha256:<hex>``) are the
  operator's: admins of workspace ``default``, compared in constant time in memory;
- **managed keys** (``ig_live_…``, made with ``imagegate keys create`` or the admin API) live in
  the store as HMAC-SHA256 under the deployment's pepper and are looked up on every request —
  no cache, so a revoked key is refused on its very next request by every replica.

With no config keys the gateway only binds loopback (``imagegate serve`` checks) and any
caller is the operator — except one presenting a managed key, which names its own workspace
(so workspaces can be tried out locally) and is refused when unknown or revoked. An admin
may act in another workspace with the ``x-imagegate-workspace`` header; a member naming
another workspace gets 403.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from ..errors import (
    AuthenticationRequired,
    Forbidden,
    InvalidApiKey,
    NotFound,
    ServiceUnavailable,
)
from ..store import Store, StoreUnavailable
from ..workspaces import (
    DEFAULT_WORKSPACE,
    KEY_PREFIX,
    OPERATOR,
    Principal,
    key_hash,
    valid_workspace_id,
)
from .accesslog import PRINCIPAL_STATE

WORKSPACE_HEADER = "x-imagegate-workspace"
MAX_TOKEN_CHARS = 256


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_id(key: str) -> str:
    """A stable, non-secret id for an API key (traces and cache scoping)."""
    return "key_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def bearer(authorization: str | None) -> str:
    """The token of ``Authorization: Bearer <token>``; 401 when absent or malformed."""
    if not authorization:
        raise AuthenticationRequired("missing API key: send 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationRequired("the Authorization header must be 'Bearer <key>'")
    return token


class Authenticator:
    """Config keys in memory; managed keys through ``store`` when one is given."""

    def __init__(
        self, keys: list[str], *, store: Store | None = None, pepper: bytes | None = None
    ) -> None:
        self.store = store
        self.pepper = pepper
        self._digests: list[tuple[bytes, str]] = []
        for key in keys:
            if key.startswith("sha256:"):
                digest = bytes.fromhex(key[7:])
                ident = "key_" + key[7:23].lower()  # same id as the key given in clear
            else:
                digest = key_digest(key)
                ident = key_id(key)
            self._digests.append((digest, ident))

    def _config_key(self, token: str) -> str | None:
        presented = key_digest(token)
        found: str | None = None
        for digest, ident in self._digests:  # no early exit: same work for every key
            if hmac.compare_digest(presented, digest):
                found = ident
        return found

    async def principal(self, authorization: str | None) -> Principal:
        """Who the header names. 401 for a missing (when keys exist), unknown or revoked key."""
        if not authorization and not self._digests:
            return OPERATOR  # loopback dev mode
        token = bearer(authorization)
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidApiKey("invalid API key")
        if token.startswith(KEY_PREFIX) and self.store is not None and self.pepper is not None:
            try:
                record = await self.store.get_key_by_hash(key_hash(token, self.pepper))
            except StoreUnavailable:  # cannot tell a good key from a revoked one: not now
                raise ServiceUnavailable(
                    "the key store is unavailable", headers={"Retry-After": "1"}
                ) from None
            if record is None or record.revoked:
                raise InvalidApiKey("invalid API key")
            return Principal(record.workspace_id, record.role, record.id, record)
        if not self._digests:
            return OPERATOR  # dev mode: clients always send some key (the SDKs do)
        found = self._config_key(token)
        if found is None:
            raise InvalidApiKey("invalid API key")
        return Principal(DEFAULT_WORKSPACE, "admin", found)


def acting(principal: Principal, requested: str | None) -> Principal:
    """Apply the ``x-imagegate-workspace`` header: admins may act anywhere, members only in
    their own workspace (403 otherwise); a malformed id is a 404 (no such workspace)."""
    if requested is None or requested == principal.workspace_id:
        return principal
    if not principal.admin:
        raise Forbidden(f"{WORKSPACE_HEADER}: a member key acts only in its own workspace")
    if not valid_workspace_id(requested):
        raise NotFound(f"no workspace {requested[:64]!r}")
    return principal.acting_in(requested)


async def caller(request: Request) -> Principal:
    """The principal of an HTTP request, the workspace header applied (and left in the request
    state for the access log)."""
    auth: Authenticator = request.app.state.auth
    principal = await auth.principal(request.headers.get("authorization"))
    principal = acting(principal, request.headers.get(WORKSPACE_HEADER))
    setattr(request.state, PRINCIPAL_STATE, principal)
    return principal
