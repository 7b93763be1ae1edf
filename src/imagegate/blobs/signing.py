"""Signed, expiring image URLs: ``{base}/v2/files/{key}?expires=<unix>&sig=<hex>``.

The signature is HMAC-SHA256 over ``key`` and ``expires`` with the gateway's signing key, so
a URL can be handed to anyone and stops working at ``expires``; changing any part of it
(key, expiry, signature) makes it invalid. The key comes from config, or is generated once
and kept at ``<data_dir>/signing.key`` (mode 0600) so URLs survive restarts and every worker
process signs alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from pathlib import Path

from ..config import Config

FILES_PATH = "/v2/files/"
KEY_FILE = "signing.key"


def load_signing_key(config: Config) -> bytes:
    """``config.signing_key``, else the persisted random key (created on first use)."""
    if config.signing_key:
        return config.signing_key.encode("utf-8")
    path = Path(config.data_dir).expanduser() / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written in full to a private temp file, then hard-linked into place: the link is atomic
    # and fails if another worker got there first, so every worker ends up with one key.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    return path.read_text().strip().encode("utf-8")


class URLSigner:
    """Signs and verifies file URLs; ``ttl_s`` is how long a fresh URL stays valid."""

    def __init__(self, secret: bytes, ttl_s: int = 3600) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def signature(self, key: str, expires: int) -> str:
        msg = f"{key}\n{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def url(self, base_url: str, key: str, *, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + self.ttl_s
        sig = self.signature(key, expires)
        return f"{base_url.rstrip('/')}{FILES_PATH}{key}?expires={expires}&sig={sig}"

    def verify(
        self, key: str, expires: str | None, sig: str | None, *, now: float | None = None
    ) -> bool:
        """True when ``sig`` signs (key, expires) and ``expires`` has not passed."""
        if not expires or not sig or len(expires) > 12 or len(sig) > 128:
            return False
        if not (expires.isascii() and expires.isdigit() and sig.isascii()):
            return False
        expiry = int(expires)
        if expiry < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self.signature(key, expiry), sig.lower())
