"""Idempotency keys on the image POSTs: one upstream call per (workspace, key), however often
the client retries (docs/long-calls.md).

``settings`` (the ``idempotency`` config section) is the only module imported here: config.py
imports it, so this package must not import anything that imports the config back.
"""

from __future__ import annotations

from .settings import IdempotencyConfig

__all__ = ["IdempotencyConfig"]
