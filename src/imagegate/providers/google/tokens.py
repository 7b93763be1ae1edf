"""OAuth access tokens for Vertex AI, through the ``google-auth`` package.

Where a token comes from, first match wins:

1. ``access_token`` in config: sent as is (e.g. ``gcloud auth print-access-token``).
2. ``credentials`` (inline JSON or mapping) or ``credentials_file``: a service-account key
   (``google.oauth2.service_account.Credentials``: a signed JWT-bearer grant posted to the
   key's ``token_uri``).
3. Otherwise Application Default Credentials (``google.auth.default()``): the file named by
   ``GOOGLE_APPLICATION_CREDENTIALS`` (service account, workload identity federation, gcloud
   user credentials...), ``gcloud auth application-default login``, or the metadata server
   on GCE/GKE/Cloud Run. Other credential types go that way, not inline: google-auth gives
   each its own safeguards (user credentials always refresh at Google's endpoint).
   Docs: https://cloud.google.com/docs/authentication/application-default-credentials and
   https://googleapis.dev/python/google-auth/latest/user-guide.html

Finding no credentials at all is remembered for ``NO_CREDENTIALS_RETRY_S``: off Google Cloud,
ADC's last resort probes the metadata server (3 tries of 3 s by default) before giving up, and
a misconfigured entry must answer 503 at once instead of paying that on every request.

google-auth refreshes with blocking HTTP (its ``requests`` transport), so a refresh runs in a
worker thread (``asyncio.to_thread``), never on the event loop. Concurrent calls share the one
refresh in flight. A token with less than ``REFRESH_AHEAD_S`` left is refreshed in the
background while calls keep using it; one with less than ``MIN_LEFT_S`` left is not used.

Secrets never leave this object: not logged, not put in error messages.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.service_account
import requests
from google.auth.credentials import Credentials

from ...config import ProviderConfig
from ...errors import UpstreamConnectionError, UpstreamFailure, UpstreamHTTPError
from ..core.failures import not_configured

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
REFRESH_AHEAD_S = 300.0  # start a background refresh when a token has less than this left
MIN_LEFT_S = 60.0  # below this a call waits for the new token
MAX_KEY_BYTES = 64 * 1024  # a key file is ~2.5 KB; anything far larger is not one
NO_CREDENTIALS_RETRY_S = 60.0  # after ADC found nothing, answer 503 at once this long
NO_CREDENTIALS = (
    "no credentials (access_token, credentials_file, credentials or api_key) and "
    "no usable Application Default Credentials"
)


def _explicit_info(config: ProviderConfig) -> dict[str, Any] | None:
    """The key configured inline (``credentials``) or as a file (``credentials_file``)."""
    inline = config.option("credentials")
    if isinstance(inline, Mapping):
        return dict(inline)
    if isinstance(inline, str) and inline.strip():
        loaded = json.loads(inline)
    elif path := config.option("credentials_file"):
        raw = Path(str(path)).expanduser().read_bytes()
        if len(raw) > MAX_KEY_BYTES:
            raise ValueError("credentials file too large")
        loaded = json.loads(raw)
    else:
        return None
    if not isinstance(loaded, dict):
        raise ValueError("credentials are not a JSON object")
    return loaded


class UnsupportedCredentials(ValueError):
    """A key of a type this entry cannot take inline (the message names it; no secret)."""


def from_info(info: dict[str, Any]) -> tuple[Credentials, str | None]:
    """google-auth credentials (and the key's project) for a service-account key; other
    types belong in ``GOOGLE_APPLICATION_CREDENTIALS`` (ADC)."""
    kind = info.get("type")
    if kind != "service_account":
        raise UnsupportedCredentials(
            f"credentials of type {str(kind)[:40]!r}: a service_account key is expected here"
            " (other types through GOOGLE_APPLICATION_CREDENTIALS)"
        )
    key = google.oauth2.service_account.Credentials
    sa = key.from_service_account_info(  # type: ignore[no-untyped-call]
        {"token_uri": DEFAULT_TOKEN_URI, **info}, scopes=SCOPES
    )
    project = info.get("project_id")
    return sa, project if isinstance(project, str) else None


def _refused(provider: str, why: str) -> UpstreamHTTPError:
    return UpstreamHTTPError(f"{provider}: {why}", status=401, code="provider_credential_invalid")


class TokenSource:
    """Bearer tokens for one provider entry; safe to share between concurrent calls."""

    def __init__(
        self,
        config: ProviderConfig,
        provider: str = "vertex",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._provider = provider
        self._clock = clock  # for the remembered "no credentials" (tests move it)
        self._missing_until = -math.inf  # ADC found nothing: 503 at once until then
        self._static: str | None = config.option("access_token")
        self._credentials: Credentials | None = None
        self._transport: google.auth.transport.requests.Request | None = None
        self._token: str | None = None
        self._expires_at = 0.0  # epoch seconds; inf when the credentials never expire
        self._refreshing: asyncio.Task[tuple[str, float]] | None = None
        self.project: str | None = None  # the key's or ADC's project, once loaded

    async def token(self) -> str:
        """A valid access token (a refresh, when one is due, runs off the event loop)."""
        if self._static:
            return self._static
        if self._credentials is None and self._clock() < self._missing_until:
            raise not_configured(self._provider, NO_CREDENTIALS)
        left = self._expires_at - time.time()
        if self._token is not None and left > REFRESH_AHEAD_S:
            return self._token
        refresh = self._refreshing or self._start_refresh()
        if self._token is not None and left > MIN_LEFT_S:
            return self._token  # still good while the new one is fetched
        try:
            token, _ = await asyncio.shield(refresh)
        except UpstreamFailure as exc:  # a fresh error per caller: callers may rewrite theirs
            raise type(exc)(exc.message, status=exc.status, code=exc.code) from None
        return token

    def _start_refresh(self) -> asyncio.Task[tuple[str, float]]:
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._refresh))
        self._refreshing = task
        task.add_done_callback(self._refreshed)
        return task

    def _refreshed(self, task: asyncio.Task[tuple[str, float]]) -> None:
        self._refreshing = None
        if not task.cancelled() and task.exception() is None:
            self._token, self._expires_at = task.result()

    def _refresh(self) -> tuple[str, float]:
        """In a worker thread (one at a time): load the credentials once, then refresh."""
        if self._credentials is None:
            self._credentials, self.project = self._load()
        if self._transport is None:
            self._transport = google.auth.transport.requests.Request(requests.Session())
        creds = self._credentials
        try:
            creds.refresh(self._transport)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.RefreshError as exc:
            why = str(exc)[:300]
            if getattr(exc, "retryable", False):
                raise UpstreamConnectionError(f"{self._provider}: token refresh: {why}") from None
            raise _refused(self._provider, f"token refresh refused: {why}") from None
        except google.auth.exceptions.TransportError as exc:
            why = str(exc)[:300]
            raise UpstreamConnectionError(f"{self._provider}: token refresh: {why}") from None
        except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
            why = f"token refresh failed ({type(exc).__name__})"
            raise _refused(self._provider, why) from None
        if not isinstance(creds.token, str) or not creds.token:
            raise _refused(self._provider, "token endpoint answered without an access_token")
        expiry = creds.expiry  # naive UTC datetime, or None: never expires
        expires_at = math.inf if expiry is None else expiry.replace(tzinfo=UTC).timestamp()
        return creds.token, expires_at

    def _load(self) -> tuple[Credentials, str | None]:
        """The configured key, else ADC (read on first use: a bad key fails calls, not startup)."""
        try:
            info = _explicit_info(self._config)
        except (OSError, ValueError) as exc:
            why = f"credentials not readable ({type(exc).__name__})"
            raise _refused(self._provider, why) from None
        if info is not None:
            try:
                return from_info(info)
            except UnsupportedCredentials as exc:
                raise _refused(self._provider, str(exc)) from None
            except (KeyError, ValueError, TypeError, google.auth.exceptions.GoogleAuthError):
                raise _refused(self._provider, "unusable credentials (not a valid key)") from None
        try:
            creds, project = google.auth.default(scopes=SCOPES)
        except (google.auth.exceptions.GoogleAuthError, ValueError):
            self._missing_until = self._clock() + NO_CREDENTIALS_RETRY_S
            raise not_configured(self._provider, NO_CREDENTIALS) from None
        return creds, project
