"""Shared plumbing for HTTP providers: one aiohttp session per provider, error mapping.

The runner builds a request (``Outbound``) and calls ``send`` (or ``open`` for a stream of
events); this module turns statuses, resets and truncated bodies into ``UpstreamFailure``
values so every provider fails the same way. Every body read is capped at
``max_response_bytes`` (``limits.max_provider_response_bytes``, set by the registry): an
upstream that answers more is a broken response, not a memory spike.

URLs a provider hands back for the adapter to call with its credentials (polling, result and
cancel URLs) must be on the provider's own configured host:port, or in the vendor's API host
family when the adapter names one (``own_url``); anything else fails the attempt and no
request is sent to it.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from ...config import LimitsConfig, ProviderConfig
from ...errors import UpstreamConnectionError, UpstreamHTTPError, provider_status
from ...net import BodyTooLarge, in_family, origin_of, origins_of, read_capped
from ...telemetry import otel
from . import policy

READ_BUFSIZE = 2 * 1024 * 1024
Headers = Mapping[str, str]


class Outbound:
    """One request ready to send (``send``, ``open``); as a context, it closes the files its
    multipart body opened once the request is sent."""

    __slots__ = ("closers", "data", "headers", "method", "params", "signed", "target", "url")

    def __init__(
        self,
        method: str,
        url: str,
        target: str | URL,  # ``url``, or a ``URL`` sent byte for byte (already %-encoded)
        headers: Headers,
        params: Headers | None,
        data: Any,
        signed: bytes | None,  # the body's bytes, for a signature (None: a multipart form)
        closers: list[Any],
    ) -> None:
        self.method, self.url, self.target, self.headers = method, url, target, headers
        self.params, self.data, self.signed, self.closers = params, data, signed, closers

    def __enter__(self) -> Outbound:
        return self

    def __exit__(self, *exc: object) -> None:
        for fh in self.closers:
            fh.close()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_message(body: bytes, status: int) -> tuple[str, str | None]:
    """Best-effort message and code from a provider's error body."""
    message, code, _ = error_details(body, status)
    return message, code


def error_details(body: bytes, status: int) -> tuple[str, str | None, str | None]:
    """Best-effort message, code and ``param`` (the field it blames) from an error body."""
    text = body[:4000].decode("utf-8", "replace").strip()
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    message, code, param = None, None, None
    if isinstance(doc, dict):
        err = doc.get("error", doc)
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail") or err.get("msg")
            raw_code = err.get("code") or err.get("type")
            code = str(raw_code) if raw_code is not None else None
            if isinstance(err.get("param"), str) and err["param"]:
                param = err["param"][:256]
            if message is None and isinstance(err.get("errors"), list) and err["errors"]:
                message = "; ".join(str(e) for e in err["errors"])
        elif isinstance(err, str):
            message = err
        if message is None and isinstance(doc.get("detail"), str | list):
            message = str(doc["detail"])
    if not isinstance(message, str) or not message:
        message = text or f"upstream answered {status}"
    return message, code, param


def map_status(status: int, message: str, code: str | None) -> str:
    """orq error code for a provider's error answer (content policy, rate limit, auth...).

    Why always a code: it marks the failure as the provider's, so a 400 from the provider
    (``provider_invalid_request``) never reads as the gateway's own ``invalid_request_body``.
    """
    if status == 400 and policy.is_policy(f"{code or ''} {message}"):
        return policy.CODE
    return provider_status(status)[0]


class HTTPProvider:
    """Base for adapters that speak HTTP: lazy shared session, uniform failures."""

    name: str = "http"
    # limits.max_provider_response_bytes; the registry sets it from the full config
    max_response_bytes: int = LimitsConfig().max_provider_response_bytes
    # The vendor's API hosts (e.g. ``bfl.ai`` for BFL's regional ``api.eu1.bfl.ai``): https
    # URLs there count as the provider's own while the configured host is in that family too.
    api_host_family: str | None = None
    # Error statuses whose policy-worded answers are a 400 ``content_policy_violation``
    # (``policy.py``), and statuses that always are one (Stability's 403).
    policy_statuses: frozenset[int] = frozenset({400})
    refusal_statuses: frozenset[int] = frozenset()

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    def origin_urls(self) -> tuple[str, ...]:
        """The base URL(s) this adapter calls (config's ``base_url`` or the vendor default):
        image URLs on their host:port are trusted by the fetcher."""
        base = getattr(self, "base_url", None)
        return (base,) if isinstance(base, str) and base else ()

    def own_url(self, url: str, what: str) -> str:
        """``url`` when the provider's credentials may be sent to it, else a failure.

        Why: polling and result URLs come from the upstream's answer; a hostile or broken
        one must not make the gateway send its API key (or any request) elsewhere.
        """
        origin = origin_of(url)
        own = origins_of(self.origin_urls())
        if origin is not None and origin in own:
            return url
        family = self.api_host_family
        if (
            origin is not None
            and family is not None
            and url[:8].lower() == "https://"
            and origin[1] == 443
            and in_family(origin[0], family)
            and any(in_family(host, family) for host, _ in own)
        ):
            return url
        raise UpstreamConnectionError(f"{self.name}: {what} is not on the provider's host")

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.config.pool_size, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
                json_serialize=lambda o: orjson.dumps(o).decode(),
                auto_decompress=True,
                # Image answers are megabytes: with aiohttp's 64 KB default the connection is
                # paused and resumed several times per answer (~0.1 ms of CPU per 1.5 MB).
                read_bufsize=READ_BUFSIZE,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def send(self, out: Outbound) -> tuple[int, bytes, Mapping[str, str]]:
        """One HTTP exchange; any status ≥ 400 raises ``UpstreamHTTPError``."""
        headers = self._outgoing(out.headers)
        try:
            async with self.session.request(
                out.method, out.target, headers=headers, data=out.data, params=out.params
            ) as resp:
                body = await read_capped(resp, self.max_response_bytes)
                status = resp.status
                resp_headers = resp.headers
        except asyncio.CancelledError:
            raise
        except (BodyTooLarge, aiohttp.ClientError, OSError) as exc:
            raise self.broken(exc) from None
        if status >= 400:
            raise self.failure(status, body, resp_headers)
        return status, body, resp_headers

    async def open(self, out: Outbound) -> aiohttp.ClientResponse:
        """Send a request and return the open response, its body unread (a stream of events).

        Failures are ``send``'s: an error status (its body read within the cap) raises, and so
        does a broken connection. The caller must ``close`` the response it gets.
        """
        headers = self._outgoing(out.headers)
        try:
            resp = await self.session.request(
                out.method, out.target, headers=headers, data=out.data, params=out.params
            )
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, OSError) as exc:
            raise self.broken(exc) from None
        if resp.status < 400:
            return resp
        try:
            body = await read_capped(resp, self.max_response_bytes)
        except (BodyTooLarge, aiohttp.ClientError, OSError):
            body = b""
        finally:
            resp.close()
        raise self.failure(resp.status, body, resp.headers)

    def _outgoing(self, headers: Headers) -> dict[str, str]:
        """The headers sent: the entry's own, the request's, and the attempt's W3C
        ``traceparent`` when tracing is on."""
        all_headers = {**self.config.headers, **headers}
        if otel.ACTIVE is not None:
            otel.ACTIVE.inject(all_headers)
        return all_headers

    def broken(self, exc: BaseException) -> UpstreamConnectionError:
        """The failure for a request that got no usable answer (``send`` and ``open``)."""
        if isinstance(exc, BodyTooLarge):
            return UpstreamConnectionError(
                f"{self.name}: response over {self.max_response_bytes} bytes"
            )
        if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
            return UpstreamConnectionError(f"{self.name}: broken response: {exc}")
        if isinstance(exc, aiohttp.ClientConnectionError | OSError):
            return UpstreamConnectionError(f"{self.name}: connection failed: {exc}")
        return UpstreamConnectionError(f"{self.name}: {exc}")

    def failure(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        """The failure for an error answer: orq code, Retry-After, the field it blames, and
        a policy refusal as 400 ``content_policy_violation`` whatever status it came with."""
        message, code, param = error_details(body, status)
        if status in self.refusal_statuses or policy.refusal(
            status, f"{code or ''} {message}", self.policy_statuses
        ):
            return UpstreamHTTPError(message, status=400, code=policy.CODE, param=param)
        return UpstreamHTTPError(
            message,
            status=status,
            code=map_status(status, message, code),
            retry_after_s=parse_retry_after(headers.get("Retry-After")),
            param=param,
        )
