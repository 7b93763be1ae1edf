"""Bring a provider's image URL home: ``data:`` URIs decoded, http(s) URLs downloaded.

Provider URLs expire (often within the hour) and point at someone else's storage, so the
gateway keeps its own copy. A provider URL did not come from config, so it is fetched through
the address guard (``imagegate.net.guard``): http(s) only, the host resolved once and only
public addresses connected to (``fetch.allow_private`` opens loopback and private ranges),
redirects followed by hand, at most five, each hop checked again. URLs on a host:port the
operator configured for the serving provider (``trusted``) skip the address check. Bodies are
capped at ``storage.fetch_max_bytes`` and the whole chain at ``storage.fetch_timeout_s``.

Failures are a ``FetchError`` whose message names neither the host nor the address nor the
port (it reaches the caller, and must not turn the gateway into a port scanner); details are
logged at debug level.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import aiohttp
import pybase64
from yarl import URL

from ..net import (
    BodyTooLarge,
    GuardedResolver,
    Origin,
    RefusedAddress,
    check_literal,
    origin_of,
    read_capped,
)
from ..telemetry import otel

log = logging.getLogger("imagegate.fetch")

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
REFUSED = "provider image URL refused: not a public address"
FAILED = "provider image URL could not be fetched"


class FetchError(Exception):
    """The provider's image could not be retrieved (refused, too big, slow, 4xx/5xx)."""


def decode_data_uri(uri: str) -> tuple[bytes, str | None]:
    """``data:<mime>[;base64],<payload>`` → (bytes, mime)."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.lower().startswith("data:"):
        raise FetchError("malformed data: URI")
    params = header[5:].split(";")
    mime = params[0].strip() or None
    try:
        if any(p.strip().lower() == "base64" for p in params[1:]):
            return pybase64.b64decode(payload.strip(), validate=False), mime
        return urllib.parse.unquote_to_bytes(payload), mime
    except ValueError as exc:
        raise FetchError(f"data: URI is not valid base64: {exc}") from None


class ImageFetcher:
    """Downloads provider image URLs: a guarded session for any host, a plain one for the
    hosts the operator configured (kept apart so a pooled connection never crosses over)."""

    def __init__(self, *, max_bytes: int, timeout_s: float, allow_private: bool = False) -> None:
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self._guarded: aiohttp.ClientSession | None = None
        self._trusted: aiohttp.ClientSession | None = None

    def _session(self, trusted: bool) -> aiohttp.ClientSession:
        session = self._trusted if trusted else self._guarded
        if session is None or session.closed:
            resolver = None if trusted else GuardedResolver(allow_private=self.allow_private)
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, resolver=resolver),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s),
            )
            if trusted:
                self._trusted = session
            else:
                self._guarded = session
        return session

    async def fetch(
        self, url: str, *, trusted: frozenset[Origin] = frozenset()
    ) -> tuple[bytes, str | None]:
        """The bytes at ``url`` and the content type the server gave (a hint, not a fact)."""
        if url[:5].lower() == "data:":
            return decode_data_uri(url)
        try:
            target = URL(url)
        except (ValueError, TypeError):
            raise FetchError(f"{FAILED}: malformed URL") from None
        tracing = otel.ACTIVE
        if tracing is None:
            return await self._within_timeout(target, trusted)
        span, error = tracing.fetch_span(target.host or ""), None  # telemetry/otel.py
        try:
            return await self._within_timeout(target, trusted)
        except BaseException as exc:
            error = "fetch_failed" if isinstance(exc, FetchError) else type(exc).__name__
            span.failed()
            raise
        finally:
            span.end({}, error=error)

    async def _within_timeout(
        self, target: URL, trusted: frozenset[Origin]
    ) -> tuple[bytes, str | None]:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._follow(target, trusted)
        except TimeoutError:
            raise FetchError(f"{FAILED}: timed out") from None

    async def _follow(self, url: URL, trusted: frozenset[Origin]) -> tuple[bytes, str | None]:
        for _ in range(MAX_REDIRECTS + 1):
            got = await self._hop(url, trusted)
            if isinstance(got, tuple):
                return got
            url = got
        raise FetchError(f"{FAILED}: more than {MAX_REDIRECTS} redirects")

    async def _hop(self, url: URL, trusted: frozenset[Origin]) -> tuple[bytes, str | None] | URL:
        """One request: the body and its type, or the URL a redirect points at."""
        origin = origin_of(url)
        if origin is None:
            scheme = url.scheme.lower()
            if scheme in ("http", "https"):
                raise FetchError("provider image URL refused: it names no host")
            shown = scheme if scheme.isalnum() and len(scheme) <= 16 else "non-http"
            raise FetchError(f"provider image URL refused: a {shown} URL")
        own = origin in trusted
        try:
            if not own:
                check_literal(origin[0], allow_private=self.allow_private)
            headers: dict[str, str] = {}
            if otel.ACTIVE is not None:  # W3C traceparent of the fetch's span
                otel.ACTIVE.inject(headers)
            async with self._session(own).get(url, allow_redirects=False, headers=headers) as resp:
                if resp.status in REDIRECTS:
                    location = resp.headers.get("Location")
                    if not location:
                        raise FetchError(f"{FAILED}: a redirect without a Location")
                    return url.join(URL(location))
                if resp.status >= 300:
                    raise FetchError(f"{FAILED}: it answered {resp.status}")
                body = await read_capped(resp, self.max_bytes)
                mime = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
                return body, mime
        except RefusedAddress as exc:
            log.debug("fetch guard refused %s: %s", url.host, exc)
            raise FetchError(REFUSED) from None
        except BodyTooLarge:
            raise FetchError(f"provider image is over the {self.max_bytes} byte cap") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                log.debug("fetch guard refused %s: %s", url.host, exc.os_error)
                raise FetchError(REFUSED) from None
            log.debug("fetching a provider image URL failed: %s", exc)
            raise FetchError(FAILED) from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            log.debug("fetching a provider image URL failed: %s", exc)
            raise FetchError(FAILED) from None

    async def close(self) -> None:
        for session in (self._guarded, self._trusted):
            if session is not None and not session.closed:
                await session.close()
        self._guarded = self._trusted = None
