"""Bedrock's per-call auth: SigV4 over the exact bytes sent, by botocore, or a Bedrock API key.

Credentials: ``access_key_id`` / ``secret_access_key`` / ``session_token`` in the entry, else
botocore's usual chain (environment, shared profile, container or instance role), loaded once
per entry in a worker thread and refreshed there when botocore says they are due (botocore
itself is imported then, not at startup). An ``api_key`` (a Bedrock API key) replaces the
signature: it travels as ``Authorization: Bearer`` (the spec's ``auth``). Signing hashes the
body, so a body over 1 MB is signed off the event loop. Docs:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...config import ProviderConfig
from ..core.call import Outgoing
from ..core.failures import not_configured

if TYPE_CHECKING:
    from ..core.runner import SpecProvider

SERVICE = "bedrock"
OFF_LOOP_BYTES = 1024 * 1024  # hashing a larger body would stall the event loop


class AwsCredentials:
    """The entry's AWS credentials, loaded on first use (never at startup)."""

    def __init__(self, config: ProviderConfig, provider: str = "bedrock") -> None:
        self._config = config
        self._provider = provider
        self._found: Any = None  # botocore Credentials (possibly refreshable)

    async def frozen(self) -> Any:
        """A consistent (key, secret, token) snapshot; loading or a due refresh runs in a
        worker thread."""
        if self._found is None:
            self._found = await asyncio.to_thread(self._load)
        found = self._found
        refresh_needed = getattr(found, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            return await asyncio.to_thread(found.get_frozen_credentials)
        return found.get_frozen_credentials()

    def _load(self) -> Any:
        from botocore.credentials import Credentials
        from botocore.session import get_session

        key = self._config.option("access_key_id")
        secret = self._config.option("secret_access_key")
        if key and secret:
            return Credentials(str(key), str(secret), self._config.option("session_token"))
        found = get_session().get_credentials()
        if found is None:
            raise not_configured(
                self._provider,
                "no AWS credentials (set api_key, access_key_id/secret_access_key, or the "
                "AWS_* environment)",
            )
        return found


async def sign(provider: SpecProvider[Any], outgoing: Outgoing) -> Mapping[str, str]:
    """The SigV4 headers (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``) for
    this very request; nothing when a Bedrock API key is configured."""
    if provider.config.api_key:
        return {}
    from botocore.auth import SigV4Auth  # imported once an entry signs
    from botocore.awsrequest import AWSRequest

    settings = provider.settings
    credentials = await settings["aws"].frozen()
    payload = outgoing.body or b""
    headers = dict(outgoing.headers)
    request = AWSRequest(method=outgoing.method, url=outgoing.url, data=payload, headers=headers)
    signer = SigV4Auth(credentials, SERVICE, settings["region"])
    if len(payload) > OFF_LOOP_BYTES:
        await asyncio.to_thread(signer.add_auth, request)
    else:
        signer.add_auth(request)
    return {key: str(value) for key, value in request.headers.items()}
