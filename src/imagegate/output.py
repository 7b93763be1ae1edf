"""Answer images in the requested ``response_format`` whatever the provider returned.

Every image ends up in the blob store under the SHA-256 of its bytes, and is answered as a
signed gateway URL (``url``) or as base64 (``b64_json``). Without ``response_format`` the
answer keeps the format the serving provider used (its URLs re-hosted on the gateway).

The hot path stays cheap: when the caller wants ``b64_json`` and the provider sent base64,
that string is passed through untouched and the decode + hash + write happens on the archive
threads (``archive.py``, through ``BlobStore.put_sync``: one background path for every
backend, one failure counter), ``Served.pending`` resolving when it is done. A blob is
written before the answer only when the answer needs it: a URL must be fetchable the moment
it is handed out, and a cache manifest needs the keys. ::

    served = await output.prepare(result, "url", model="openai/dall-e-2", keep=False)
    items = output.answer(served, "url", "https://gw.example")
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pybase64

from .archive import ArchiveWriter
from .blobs import (
    BlobStore,
    BlobStoreError,
    FetchError,
    ImageFetcher,
    URLSigner,
    blob_key,
    content_type_of,
    load_signing_key,
    make_store,
)
from .config import Config
from .errors import ProviderError, ServiceUnavailable, UpstreamConnectionError
from .imageinfo import ImageInfo, probe, probe_b64
from .net import Origin, trusted_origins
from .request import MIME_BY_KIND, GeneratedImage, ImageResult

if TYPE_CHECKING:
    from .routing.plan import Candidate

log = logging.getLogger("imagegate.output")
T = TypeVar("T")

Format = Literal["url", "b64_json"]
RESULT_EXTRAS = ("output_format", "size", "quality")
KNOWN_KEYS = 4096  # recently written keys: skip writing the same bytes again
INLINE_BYTES = 64 * 1024  # images up to this are hashed on the loop (file IO stays in a thread)


@dataclass(slots=True)
class StoredImage:
    """One image of an answer: its blob key (None until written) and what is held in memory."""

    source: Format  # what the provider returned: answered this way when no format was asked
    key: str | None = None
    b64: str | None = None
    data: bytes | None = None
    mime: str | None = None
    revised_prompt: str | None = None
    stored: bool = False  # known to be in the blob store


@dataclass(slots=True)
class Served:
    """A complete success, answerable in either format; also what a cache manifest holds."""

    images: list[StoredImage]
    model: str
    created: int
    usage: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    pending: asyncio.Future[Any] | None = None  # background blob writes still running

    def blob_keys(self) -> list[str]:
        return [image.key for image in self.images if image.key is not None]


async def each(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """``asyncio.gather`` for a list, without wrapping a lone coroutine in a task (the usual
    case is one image per answer, and a task per step costs more than the step)."""
    if len(coros) == 1:
        return [await coros[0]]
    return list(await asyncio.gather(*coros))


def _decode_b64(text: str) -> bytes:
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # Some providers wrap lines; fall back to the lenient decoder before giving up.
        try:
            return pybase64.b64decode(text, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ProviderError(f"provider returned invalid base64: {exc}") from None


def _digest(image: StoredImage) -> tuple[bytes, str]:
    """(bytes, key) for an image held in memory; runs on a worker thread when large."""
    data = image.data if image.data is not None else _decode_b64(image.b64 or "")
    return data, blob_key(data)


def _small(image: StoredImage) -> bool:
    """Small enough to hash on the event loop: a thread hop would cost more than the hash."""
    size = len(image.data) if image.data is not None else len(image.b64 or "") * 3 // 4
    return size <= INLINE_BYTES


class Output:
    """Stores provider images and answers them; owns the blob store, URL signer and fetcher."""

    def __init__(self, config: Config, *, store: BlobStore | None = None) -> None:
        storage = config.storage
        self.store: BlobStore = store or make_store(storage)
        self.signer = URLSigner(load_signing_key(config), storage.url_ttl_s)
        self.fetcher = ImageFetcher(
            max_bytes=storage.fetch_max_bytes,
            timeout_s=storage.fetch_timeout_s,
            allow_private=config.fetch.allow_private,
        )
        self.max_pixels = config.limits.max_image_pixels
        self.default_base_url = (config.public_url or f"http://{config.host}:{config.port}").rstrip(
            "/"
        )
        self._known: OrderedDict[str, None] = OrderedDict()
        self.archive = ArchiveWriter(self.store.archive_threads)

    @property
    def background_failures(self) -> int:
        """Archive copies that could not be written (``/metrics``)."""
        return self.archive.failures

    # --- provider result → Served -------------------------------------------------------
    async def prepare(
        self,
        result: ImageResult,
        want: str | None,
        *,
        model: str,
        attempts: int = 0,
        keep: bool = False,
    ) -> Served:
        """Normalise ``result``; store now what the answer (or ``keep``: the cache) needs."""
        images = await each([self._inline(image) for image in result.images])
        now: list[StoredImage] = []
        later: list[StoredImage] = []
        for image in images:
            (now if keep or (want or image.source) == "url" else later).append(image)
        if now:
            await each([self._store(image) for image in now])
        served = Served(
            images=list(images),
            model=model,
            created=result.created or int(time.time()),
            usage=result.usage,
            extras={n: getattr(result, n) for n in RESULT_EXTRAS if getattr(result, n)},
            attempts=attempts,
        )
        if later:
            served.pending = await self._background(later)
        return served

    async def fetch_remote(
        self, result: ImageResult, candidate: Candidate | None = None
    ) -> ImageResult:
        """Check every image of ``result`` is one; download http(s) and ``data:`` URLs.

        Run inside the routing attempt (``finish``): an image that cannot be fetched, is too
        large or is not a png/jpeg/webp of at most ``limits.max_image_pixels`` is an
        ``UpstreamConnectionError`` of that attempt, so it is retried or falls back. Base64
        and bytes are only header-probed here (a few dozen bytes); URLs on the serving
        provider's configured host:port are trusted, any other goes through the address guard.
        """
        who = f"{candidate.provider_name}: " if candidate is not None else ""
        trusted: frozenset[Origin] | None = None

        async def one(image: GeneratedImage) -> None:
            nonlocal trusted
            if image.b64 is not None:
                self._checked(probe_b64(image.b64), who)
            elif image.data is not None:
                self._checked(probe(image.data), who)
            elif image.url is not None:
                if trusted is None:
                    trusted = trusted_origins(candidate.provider) if candidate else frozenset()
                image.data, image.mime = await self._download(image.url, trusted, who)

        await each([one(image) for image in result.images])
        return result

    def _checked(self, info: ImageInfo | None, who: str = "") -> ImageInfo:
        """``info`` when it describes an acceptable image; else a failure of the attempt."""
        if info is None:
            raise UpstreamConnectionError(f"{who}provider answer is not a png, jpeg or webp image")
        if info.pixels > self.max_pixels:
            raise UpstreamConnectionError(
                f"{who}provider image is {info.width}x{info.height}, over the "
                f"{self.max_pixels} pixel limit"
            )
        return info

    async def _download(
        self, url: str, trusted: frozenset[Origin], who: str = ""
    ) -> tuple[bytes, str]:
        """The checked bytes behind a provider URL and their type (from the bytes, never
        from the provider's or the server's hint)."""
        try:
            data, _ = await self.fetcher.fetch(url, trusted=trusted)
        except FetchError as exc:
            raise UpstreamConnectionError(f"{who}{exc}") from None
        info = self._checked(probe(data), who)
        return data, MIME_BY_KIND[info.kind]

    async def _inline(self, image: GeneratedImage) -> StoredImage:
        """Bring the image into memory: b64 kept as text, URLs fetched, data: URIs decoded.

        Results that went through ``fetch_remote`` hold no URL left to fetch; one that did
        not is fetched here with no trusted host (every URL through the guard).
        """
        mime, revised = image.mime, image.revised_prompt
        if image.b64 is not None:
            return StoredImage("b64_json", b64=image.b64, mime=mime, revised_prompt=revised)
        if image.data is not None:
            source: Format = "url" if image.url is not None else "b64_json"
            return StoredImage(source, data=image.data, mime=mime, revised_prompt=revised)
        if image.url is None:
            raise ProviderError("provider returned an image with neither data nor URL")
        try:
            data, mime = await self._download(image.url, frozenset())
        except UpstreamConnectionError as exc:
            raise ProviderError(exc.message) from None
        return StoredImage("url", data=data, mime=mime, revised_prompt=image.revised_prompt)

    async def _store(self, image: StoredImage) -> None:
        """Hash and write one image (off the event loop) that the answer or the cache needs
        now; sets ``image.key``."""
        small = _small(image)  # hashing a small image costs less than a thread hop
        data, key = _digest(image) if small else await asyncio.to_thread(_digest, image)
        if key not in self._known:
            try:
                await self.store.put(key, data, content_type_of(data, image.mime))
            except BlobStoreError as exc:
                log.error("blob store write failed: %s", exc)
                raise ServiceUnavailable("the image store is unavailable") from None
            self._known[key] = None
            if len(self._known) > KNOWN_KEYS:
                self._known.popitem(last=False)
        image.key, image.stored = key, True

    async def _background(self, images: list[StoredImage]) -> asyncio.Future[Any]:
        # One job per image, so a failed write loses only its own image.
        futures = [
            self.archive.submit(
                functools.partial(self._archive_sync, image),
                len(image.b64 or "") + len(image.data or b""),  # bytes it holds
            )
            for image in images
        ]
        pending = futures[0] if len(futures) == 1 else asyncio.gather(*futures)
        if self.archive.saturated:  # back-pressure: wait for our own images
            await asyncio.gather(pending, return_exceptions=True)
        return pending

    def _archive_sync(self, image: StoredImage) -> None:
        """Decode, hash and write one archive copy (on an archive thread)."""
        data, key = _digest(image)
        self.store.put_sync(key, data, content_type_of(data, image.mime), cold=True)
        image.key, image.stored = key, True

    # --- Served from a cache manifest -----------------------------------------------------
    async def hydrate(self, served: Served, want: str | None) -> bool:
        """Make a cached answer servable: load bytes for base64, check blobs exist for URLs.

        Only what is missing is fetched. False when a blob has gone (or the store fails):
        the caller treats it as a miss.
        """

        async def one(image: StoredImage) -> bool:
            if (want or image.source) == "b64_json":
                if image.b64 is not None or image.data is not None:
                    return True
                if image.key is None:
                    return False
                image.data = await self.store.get(image.key)
                image.stored = image.data is not None
            elif image.key is None:
                return False
            elif not image.stored:
                image.stored = await self.store.exists(image.key)
            if not image.stored:
                self._known.pop(image.key, None)  # gone from the store: write it again
            return image.stored

        try:
            return all(await each([one(image) for image in served.images]))
        except BlobStoreError as exc:
            log.warning("cache hit unusable, blob store failed: %s", exc)
            return False

    # --- Served → data items ----------------------------------------------------------------
    def answer(self, served: Served, want: str | None, base_url: str) -> list[dict[str, Any]]:
        """``data`` items in the format asked (fresh signed URLs every time)."""
        base = base_url or self.default_base_url
        items: list[dict[str, Any]] = []
        for image in served.images:
            item: dict[str, Any]
            if (want or image.source) == "url":
                if image.key is None:
                    raise RuntimeError("a URL was asked for an image that is not stored")
                item = {"url": self.signer.url(base, image.key)}
            elif image.b64 is not None:
                item = {"b64_json": image.b64}
            else:
                assert image.data is not None
                item = {"b64_json": pybase64.b64encode_as_string(image.data)}
            if image.revised_prompt is not None:
                item["revised_prompt"] = image.revised_prompt
            items.append(item)
        return items

    async def drain(self) -> None:
        """Wait for background writes (shutdown, tests)."""
        await self.archive.drain()

    async def close(self) -> None:
        await self.drain()
        await self.archive.close()
        await self.fetcher.close()
        await self.store.close()
