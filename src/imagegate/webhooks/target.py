"""``orq.webhook`` of a job: where its completion message goes and which secret signs it.

Checked when the job is submitted, so a bad one is a 400 at once rather than a delivery
that can never succeed: the URL is bounded, http(s), without credentials, and its host must
pass the same address guard as every other outbound fetch of a URL that did not come from
config (``net/``: no loopback, private, link-local or metadata addresses unless
``fetch.allow_private``). The sender checks again on every attempt (the guarded resolver),
so a name that later resolves elsewhere is still refused.
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..config import Config
from ..errors import InvalidRequest
from ..net import GuardedResolver, RefusedAddress, check_literal
from ..net.guard import looks_like_ip

PARAM = "orq.webhook"
_PRINTABLE = re.compile(r"[\x21-\x7e]+")  # ASCII without spaces or control characters
RESOLVE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    secret_id: str


def _bad(message: str, param: str = PARAM) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _bad("the port is not a number from 0 to 65535", f"{PARAM}.url") from None
    return host, port


def check_url(url: Any, max_chars: int) -> str:
    """A webhook URL we are willing to store and POST to, or a 400 naming it."""
    param = f"{PARAM}.url"
    if not isinstance(url, str) or not url:
        raise _bad("a URL is required", param)
    if len(url) > max_chars:
        raise _bad(f"at most {max_chars} characters", param)
    if not _PRINTABLE.fullmatch(url):
        raise _bad("printable ASCII only (percent-encode the rest)", param)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _bad("http or https only", param)
    if parts.username is not None or parts.password is not None:
        raise _bad("no credentials in the URL (the signature authenticates the message)", param)
    host, _ = host_port(url)
    if not host:
        raise _bad("the URL has no host", param)
    return url


async def check_address(url: str, *, allow_private: bool) -> None:
    """Refuse a host the fetch guard refuses (a literal, or every address a name resolves to)."""
    host, port = host_port(url)
    param = f"{PARAM}.url"
    try:
        check_literal(host, allow_private=allow_private)
        if not looks_like_ip(host):
            resolver = GuardedResolver(allow_private=allow_private)
            await asyncio.wait_for(
                resolver.resolve(host, port, socket.AF_UNSPEC), RESOLVE_TIMEOUT_S
            )
    except RefusedAddress as exc:
        raise _bad(f"the address of {host[:80]!r} is not allowed ({exc})", param) from None
    except (OSError, TimeoutError):
        raise _bad(f"cannot resolve {host[:80]!r}", param) from None


def secret_for(config: Config, workspace: str, secret_id: Any) -> str:
    """The id of the secret that signs this workspace's webhook (named, or the default)."""
    hooks = config.webhooks
    if secret_id is None:
        secret_id = hooks.default_secret
        if secret_id is None:
            raise _bad(
                "secret_id is required: no webhooks.default_secret is configured",
                f"{PARAM}.secret_id",
            )
    if not isinstance(secret_id, str) or len(secret_id) > 64:
        raise _bad("unknown secret_id", f"{PARAM}.secret_id")
    entry = hooks.secrets.get(secret_id)
    if entry is None or (entry.workspaces is not None and workspace not in entry.workspaces):
        raise _bad("unknown secret_id", f"{PARAM}.secret_id")  # the same for "not yours"
    return secret_id


async def parse_webhook(raw: Any, config: Config, workspace: str) -> WebhookTarget | None:
    """``orq.webhook`` as sent (None: no webhook) → a checked target, or a 400."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _bad("an object {url, secret_id?}")
    unknown = set(raw) - {"url", "secret_id"}
    if unknown:
        raise _bad(f"unknown field {sorted(unknown)[0][:40]!r}")
    url = check_url(raw.get("url"), config.webhooks.max_url_chars)
    secret_id = secret_for(config, workspace, raw.get("secret_id"))
    await check_address(url, allow_private=config.fetch.allow_private)
    return WebhookTarget(url, secret_id)
