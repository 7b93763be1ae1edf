"""Image storage: content-addressed blobs (local directory or S3) and signed, expiring URLs."""

from __future__ import annotations

from ..config import StorageConfig
from .fetch import FetchError, ImageFetcher, decode_data_uri
from .local import LocalBlobStore
from .s3 import S3BlobStore
from .signing import URLSigner, load_signing_key
from .store import BlobStore, BlobStoreError, blob_key, content_type_of, is_blob_key


def make_store(config: StorageConfig) -> BlobStore:
    """The backend ``storage.backend`` names."""
    if config.backend == "s3":
        return S3BlobStore(config)
    return LocalBlobStore(
        config.path, direct_io=config.direct_io, pack_max_bytes=config.pack_max_bytes
    )


__all__ = [
    "BlobStore",
    "BlobStoreError",
    "FetchError",
    "ImageFetcher",
    "LocalBlobStore",
    "S3BlobStore",
    "URLSigner",
    "blob_key",
    "content_type_of",
    "decode_data_uri",
    "is_blob_key",
    "load_signing_key",
    "make_store",
]
