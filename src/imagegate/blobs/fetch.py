"""Bring a provider's image URL home: ``data:`` URIs decoded, http(s) URLs downloaded.

Provider URLs expire (often within the hour) and point at someone else's storage, so the
gateway keeps its own copy. Only http and https are fetched, bodies are capped at
``storage.fetch_max_bytes`` and the whole download at ``storage.fetch_timeout_s``; anything
else is a ``FetchError`` that the caller answers as a provider error (502).
"""

from __future__ import annotations

import urllib.parse

import aiohttp
import pybase64

CHUNK = 256 * 1024


class FetchError(Exception):
    """The provider's image could not be retrieved (bad scheme, too big, slow, 4xx/5xx)."""


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
    """Downloads provider image URLs over one pooled session."""

    def __init__(self, *, max_bytes: int, timeout_s: float) -> None:
        self.max_bytes = max_bytes
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, connector=aiohttp.TCPConnector(limit=64)
            )
        return self._session

    async def fetch(self, url: str) -> tuple[bytes, str | None]:
        """The image bytes at ``url`` and the content type the server gave."""
        if url[:5].lower() == "data:":
            return decode_data_uri(url)
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError(f"refusing to fetch a {scheme or 'relative'!r} image URL")
        try:
            async with self.session.get(url, allow_redirects=True, max_redirects=5) as resp:
                if resp.status >= 400:
                    raise FetchError(f"image URL answered {resp.status}")
                declared = resp.content_length
                if declared is not None and declared > self.max_bytes:
                    raise FetchError(f"image is {declared} bytes, over the {self.max_bytes} cap")
                parts: list[bytes] = []
                total = 0
                async for chunk in resp.content.iter_chunked(CHUNK):
                    total += len(chunk)
                    if total > self.max_bytes:
                        raise FetchError(f"image is over the {self.max_bytes} byte cap")
                    parts.append(chunk)
                mime = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
                return b"".join(parts), mime
        except TimeoutError:
            raise FetchError("timed out fetching the image URL") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise FetchError(f"could not fetch the image URL: {exc}") from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
