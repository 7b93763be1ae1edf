"""Standard Webhooks signatures: what a receiver checks to trust a job's completion message.

The scheme (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
the secret is ``whsec_`` + base64 of random bytes; the signed content is
``"{webhook-id}.{webhook-timestamp}.{body}"`` and the signature is the base64 of its
HMAC-SHA256 under the decoded secret, sent as ``webhook-signature: v1,<signature>`` beside
``webhook-id`` (the same on every retry of one message, so receivers can drop duplicates) and
``webhook-timestamp`` (unix seconds of this attempt, so receivers can refuse replays)::

    headers = sign("msg_01J...", 1718000000, body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "whsec_"


def secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret (config validated the form)."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``msg_id.timestamp.body``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign(msg_id: str, timestamp: int, body: bytes, secret: str) -> dict[str, str]:
    """The three headers of one delivery attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(msg_id, timestamp, body, secret),
    }
