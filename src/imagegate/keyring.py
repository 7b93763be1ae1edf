"""The deployment's pepper for managed API keys: one derivation, shared by the CLI that makes
keys and the HTTP layer that checks them, so both always hash a key the same way.

``key_pepper`` in config wins; otherwise it is derived from the URL-signing secret, which every
replica already shares (``signing_key``, or the persisted key under ``data_dir``).
"""

from __future__ import annotations

from .blobs.signing import load_signing_key
from .config import Config
from .workspaces import pepper_from


def pepper(config: Config) -> bytes:
    """The HMAC key of ``workspaces.key_hash`` for this deployment."""
    if config.key_pepper:
        return config.key_pepper.encode("utf-8")
    return pepper_from(load_signing_key(config))
