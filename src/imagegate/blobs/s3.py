"""Blobs in an S3-compatible bucket (AWS S3, MinIO, R2, moto...): SigV4 by botocore, IO by aiohttp.

botocore only signs; the bytes travel over one pooled aiohttp session, so no thread pool and
no synchronous client sit on the request path. Background writes (``put_sync``, called on the
archive threads) use botocore's own pooled urllib3 session instead, so they never wait on the
event loop. The payload hash S3 wants in
``x-amz-content-sha256`` is the blob key itself (both are the SHA-256 of the bytes), so a
write never hashes the image twice.

With ``endpoint_url`` objects are addressed path-style (``<endpoint>/<bucket>/<key>``), which
every S3-compatible server accepts; without it, AWS virtual-hosted style is used.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from urllib.parse import quote

import aiohttp
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError
from botocore.httpsession import URLLib3Session

from ..config import ConfigError, StorageConfig
from .store import BlobStoreError, content_type_of

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class _S3Auth(SigV4Auth):  # type: ignore[misc]
    """SigV4 without path normalisation (S3 object names are taken literally)."""

    def _normalize_url_path(self, path: str) -> str:
        return path


class S3BlobStore:
    """Content-addressed objects ``<prefix><key>`` in one bucket."""

    archive_threads = 8  # a background write waits on the network, not on the CPU

    def __init__(self, config: StorageConfig, *, timeout_s: float = 30.0) -> None:
        if not config.bucket:
            raise ConfigError("storage.bucket: required for the s3 backend")
        self.config = config
        self.bucket = config.bucket
        self.region = config.region
        self.prefix = config.prefix
        if config.endpoint_url:
            self._base = f"{config.endpoint_url.rstrip('/')}/{quote(self.bucket, safe='')}/"
        else:
            self._base = f"https://{self.bucket}.s3.{self.region}.amazonaws.com/"
        self._static: Credentials | None = None
        if config.access_key_id and config.secret_access_key:
            self._static = Credentials(config.access_key_id, config.secret_access_key)
        self._credentials: Credentials | None = self._static
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=5)
        self._session: aiohttp.ClientSession | None = None
        self._timeout_s = timeout_s
        self._sync: URLLib3Session | None = None  # made by the first put_sync

    def url_for(self, key: str) -> str:
        return self._base + quote(self.prefix + key, safe="/~")

    async def _frozen_credentials(self) -> ReadOnlyCredentials:
        if self._credentials is None:
            # The default chain (env, ~/.aws, instance metadata) may do blocking IO.
            self._credentials = await asyncio.to_thread(_default_credentials)
        return self._frozen_now()

    def _frozen_now(self) -> ReadOnlyCredentials:
        if self._credentials is None:
            raise BlobStoreError("s3 blob store: no credentials (storage.access_key_id or AWS_*)")
        frozen: ReadOnlyCredentials = self._credentials.get_frozen_credentials()
        return frozen

    def _signed(
        self,
        frozen: ReadOnlyCredentials,
        method: str,
        key: str,
        data: bytes | None,
        payload_sha256: str,
        headers: Mapping[str, str] | None,
    ) -> AWSRequest:
        creds = Credentials(frozen.access_key, frozen.secret_key, frozen.token)
        request = AWSRequest(
            method=method,
            url=self.url_for(key),
            data=data or b"",
            headers={**(headers or {}), "X-Amz-Content-SHA256": payload_sha256},
        )
        _S3Auth(creds, "s3", self.region).add_auth(request)
        return request

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=64)
            )
        return self._session

    async def _request(
        self,
        method: str,
        key: str,
        *,
        data: bytes | None = None,
        payload_sha256: str = EMPTY_SHA256,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        frozen = await self._frozen_credentials()
        request = self._signed(frozen, method, key, data, payload_sha256, headers)
        try:
            async with self.session.request(
                method, request.url, data=data, headers=dict(request.headers.items())
            ) as resp:
                body = await resp.read() if method != "HEAD" else b""
                return resp.status, body
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise BlobStoreError(f"s3 blob store: {method} {key}: {exc}") from None

    async def put(self, key: str, data: bytes, content_type: str, *, cold: bool = False) -> None:
        status, body = await self._request(
            "PUT", key, data=data, payload_sha256=key, headers={"Content-Type": content_type}
        )
        if status >= 300:
            raise BlobStoreError(f"s3 blob store: PUT {key}: {status} {_snippet(body)}")

    def put_sync(
        self, key: str, data: bytes, content_type: str | None = None, *, cold: bool = False
    ) -> None:
        """``put`` on the calling (archive) thread, over a blocking pooled session."""
        if self._credentials is None:
            self._credentials = _default_credentials()  # blocking IO: fine on this thread
        headers = {"Content-Type": content_type or content_type_of(data)}
        request = self._signed(self._frozen_now(), "PUT", key, data, key, headers)
        if self._sync is None:
            self._sync = URLLib3Session(
                timeout=self._timeout_s, max_pool_connections=self.archive_threads
            )
        try:
            resp = self._sync.send(request.prepare())
        except BotoCoreError as exc:
            raise BlobStoreError(f"s3 blob store: PUT {key}: {exc}") from None
        if resp.status_code >= 300:
            why = f"{resp.status_code} {_snippet(resp.content)}"
            raise BlobStoreError(f"s3 blob store: PUT {key}: {why}")

    async def get(self, key: str) -> bytes | None:
        status, body = await self._request("GET", key)
        if status == 404:
            return None
        if status >= 300:
            raise BlobStoreError(f"s3 blob store: GET {key}: {status} {_snippet(body)}")
        return body

    async def exists(self, key: str) -> bool:
        status, _ = await self._request("HEAD", key)
        if status == 404:
            return False
        if status >= 300:
            raise BlobStoreError(f"s3 blob store: HEAD {key}: {status}")
        return True

    async def delete(self, key: str) -> None:
        status, body = await self._request("DELETE", key)
        if status >= 300 and status != 404:
            raise BlobStoreError(f"s3 blob store: DELETE {key}: {status} {_snippet(body)}")

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None


def _default_credentials() -> Credentials | None:
    import botocore.session

    creds: Credentials | None = botocore.session.get_session().get_credentials()
    return creds


def _snippet(body: bytes) -> str:
    return body[:300].decode("utf-8", "replace")
