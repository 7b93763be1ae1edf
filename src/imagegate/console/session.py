"""Console sessions: a signed cookie, checked against the key store on every request.

Signing in presents an API key once (``api.auth.Authenticator`` decides who it is, as for the
API); the cookie then names the key by its id, never the key itself::

    payload = {"v": 1, "t": "managed" | "config" | "dev", "k": key id, "w": acting workspace,
               "e": expiry (unix s), "n": random nonce}
    cookie  = base64url(json(payload)) "." base64url(HMAC-SHA256(session key, that text))

The session key is derived from the deployment's key pepper, so every replica accepts the same
cookie and nothing is stored per session. Expiry is checked by the server (``e``), whatever
the browser does with the cookie. A managed key is looked up again on every request, so
revoking it ends its sessions at once; a config key must still be in ``api_keys``; a ``dev``
session (no keys configured) is void once keys are configured. The nonce ties the CSRF token
of every form to its session (``csrf_token``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ..api.auth import acting, key_id
from ..config import Config
from ..errors import GatewayError
from ..store import Store
from ..workspaces import DEFAULT_WORKSPACE, OPERATOR, Principal

Kind = Literal["managed", "config", "dev"]
COOKIE = "ig_console"
PRE_COOKIE = "ig_console_pre"  # the sign-in form's CSRF nonce, before any session exists
PRE_TTL_S = 3600
MAX_COOKIE_CHARS = 1024


@dataclass(frozen=True, slots=True)
class Session:
    kind: Kind
    key_id: str | None
    workspace: str
    expires: float
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def config_key_ids(config: Config) -> frozenset[str]:
    """The ids ``Authenticator`` gives the config keys (clear or ``sha256:``)."""
    ids = set()
    for key in config.api_keys:
        ids.add("key_" + key[7:23].lower() if key.startswith("sha256:") else key_id(key))
    return frozenset(ids)


class Sessions:
    """Issues and checks session cookies and CSRF tokens for one deployment."""

    def __init__(self, config: Config, pepper: bytes, store: Store) -> None:
        self.secret = hmac.new(pepper, b"imagegate console session v1", hashlib.sha256).digest()
        self.ttl_s = config.console.session_ttl_s
        self.config_ids = config_key_ids(config)
        self.dev = not config.api_keys
        self.store = store

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self.secret, text.encode("ascii"), hashlib.sha256).digest())

    # --- cookies -------------------------------------------------------------------------
    def issue(self, principal: Principal, *, now: float | None = None) -> tuple[Session, str]:
        """A fresh session (new nonce) for ``principal`` and its cookie value."""
        kind: Kind = "managed" if principal.key is not None else "config"
        if principal.key_id is None:
            kind = "dev"
        session = Session(
            kind,
            principal.key_id,
            principal.workspace_id,
            (now or time.time()) + self.ttl_s,
            secrets.token_urlsafe(16),
        )
        return session, self.encode(session)

    def encode(self, s: Session) -> str:
        payload = {
            "v": 1,
            "t": s.kind,
            "k": s.key_id,
            "w": s.workspace,
            "e": s.expires,
            "n": s.nonce,
        }
        text = _b64(orjson.dumps(payload))
        return f"{text}.{self._sign(text)}"

    def decode(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session a cookie holds when its signature is ours and it has not expired."""
        if not cookie or len(cookie) > MAX_COOKIE_CHARS or not cookie.isascii():
            return None
        text, _, sig = cookie.partition(".")
        if not hmac.compare_digest(sig.encode("ascii"), self._sign(text).encode("ascii")):
            return None
        try:
            data: Any = orjson.loads(_unb64(text))
            session = Session(
                data["t"], data["k"], str(data["w"]), float(data["e"]), str(data["n"])
            )
        except (ValueError, KeyError, TypeError):
            return None
        if session.kind not in ("managed", "config", "dev") or session.expires <= (
            now or time.time()
        ):
            return None
        return session

    async def principal(self, session: Session) -> Principal | None:
        """Who the session acts as now; None when its key is gone, revoked or not allowed."""
        principal: Principal
        if session.kind == "dev":
            if not self.dev:
                return None
            principal = OPERATOR
        elif session.kind == "config":
            if session.key_id not in self.config_ids:
                return None
            principal = Principal(DEFAULT_WORKSPACE, "admin", session.key_id)
        else:
            record = await self.store.get_key(session.key_id or "")
            if record is None or record.revoked:
                return None
            principal = Principal(record.workspace_id, record.role, record.id, record)
        try:
            return acting(principal, session.workspace)
        except GatewayError:  # a member whose session names another workspace: void
            return None

    # --- CSRF ----------------------------------------------------------------------------
    def csrf_token(self, nonce: str) -> str:
        return self._sign("csrf:" + nonce)

    def check_csrf(self, nonce: str, token: object) -> bool:
        if not isinstance(token, str) or not token.isascii() or len(token) > 128:
            return False
        return hmac.compare_digest(token.encode("ascii"), self.csrf_token(nonce).encode("ascii"))

    def pre_nonce(self, cookie: str | None) -> str | None:
        """The sign-in form's nonce from its own short-lived signed cookie."""
        if not cookie or len(cookie) > 256 or not cookie.isascii():
            return None
        nonce, _, rest = cookie.partition(".")
        expires, _, sig = rest.partition(".")
        if not hmac.compare_digest(
            sig.encode("ascii"), self._sign(f"pre:{nonce}.{expires}").encode("ascii")
        ):
            return None
        if not expires.isdigit() or int(expires) <= time.time():
            return None
        return nonce

    def new_pre_cookie(self) -> tuple[str, str]:
        nonce = secrets.token_urlsafe(16)
        expires = str(int(time.time()) + PRE_TTL_S)
        return nonce, f"{nonce}.{expires}.{self._sign(f'pre:{nonce}.{expires}')}"
