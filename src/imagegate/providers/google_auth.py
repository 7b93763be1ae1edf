"""OAuth access tokens for Vertex AI without a Google SDK.

Either a fixed ``access_token`` from config (e.g. ``gcloud auth print-access-token``), or a
service-account key (``credentials_file`` path or inline ``credentials``) exchanged for a token
with the JWT-bearer grant (RFC 7523): an RS256-signed assertion POSTed to the key's
``token_uri``; the token is cached until a minute before it expires. Docs:
https://developers.google.com/identity/protocols/oauth2/service-account#httprest

Secrets never leave this object: not logged, not put in error messages.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..config import ProviderConfig
from ..errors import UpstreamHTTPError

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
Fetch = Callable[[str, dict[str, str]], Awaitable[Any]]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign_assertion(account: dict[str, Any], now: float) -> str:
    """The signed JWT a service account presents to the token endpoint."""
    key = serialization.load_pem_private_key(account["private_key"].encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("service-account key is not an RSA key")
    header = {"alg": "RS256", "typ": "JWT"}
    if account.get("private_key_id"):
        header["kid"] = account["private_key_id"]
    claims = {
        "iss": account["client_email"],
        "scope": SCOPE,
        "aud": account.get("token_uri") or DEFAULT_TOKEN_URI,
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    signing_input = f"{_b64url(orjson.dumps(header))}.{_b64url(orjson.dumps(claims))}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _load_account(config: ProviderConfig) -> dict[str, Any] | None:
    inline = config.option("credentials")
    if isinstance(inline, dict):
        return inline
    if isinstance(inline, str) and inline.strip():
        loaded: dict[str, Any] = json.loads(inline)
        return loaded
    path = config.option("credentials_file")
    if path:
        from_file: dict[str, Any] = json.loads(Path(str(path)).expanduser().read_text())
        return from_file
    return None


def _refused(why: str) -> UpstreamHTTPError:
    return UpstreamHTTPError(f"vertex: {why}", status=401, code="provider_credential_invalid")


class TokenSource:
    """Bearer tokens for one provider entry; safe to share between concurrent calls."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._static: str | None = config.option("access_token")
        self._account: dict[str, Any] | None = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        cfg = self._config
        return bool(self._static or cfg.option("credentials") or cfg.option("credentials_file"))

    async def token(self, fetch: Fetch) -> str:
        """A valid access token; ``fetch(url, form)`` POSTs the grant and returns its JSON."""
        if self._static:
            return self._static
        async with self._lock:
            if self._token is None or time.time() >= self._expires_at - 60:
                await self._mint(fetch, self._load())
            assert self._token is not None
            return self._token

    def _load(self) -> dict[str, Any]:
        """The service-account key, read on first use (a bad file fails calls, not startup)."""
        if self._account is None:
            try:
                self._account = _load_account(self._config)
            except (OSError, ValueError) as exc:
                raise _refused(f"credentials not readable ({type(exc).__name__})") from None
            if self._account is None:
                raise _refused("no credentials (access_token, credentials_file or credentials)")
        return self._account

    async def _mint(self, fetch: Fetch, account: dict[str, Any]) -> None:
        now = time.time()
        try:
            assertion = sign_assertion(account, now)
        except (KeyError, ValueError, TypeError) as exc:
            raise _refused(f"unusable service-account key ({type(exc).__name__})") from None
        uri = account.get("token_uri") or DEFAULT_TOKEN_URI
        try:
            doc = await fetch(uri, {"grant_type": GRANT, "assertion": assertion})
        except UpstreamHTTPError as exc:
            if exc.status is not None and exc.status < 500 and exc.status != 429:
                exc.status, exc.code = 401, "provider_credential_invalid"
                exc.message = f"vertex: token exchange refused: {exc.message}"
            raise
        token = doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise _refused("token endpoint answered without an access_token")
        self._token = token
        self._expires_at = now + float(doc.get("expires_in") or 3600)
