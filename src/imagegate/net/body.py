"""Read a response body with a size cap, without ever holding more than the cap.

Why: an upstream (a provider, an image CDN) decides how much it sends; ``resp.read()`` would
buffer all of it. A declared Content-Length over the cap is refused before reading; without
one (chunked, or compressed so the decoded size is unknown) the body is read chunk by chunk
and the connection dropped once the cap is passed.
"""

from __future__ import annotations

import aiohttp


class BodyTooLarge(Exception):
    """The body is (or announced itself as) larger than the cap."""


async def read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """The whole body of ``resp`` if it fits in ``cap`` bytes; else ``BodyTooLarge``."""
    declared = resp.content_length
    if declared is not None and declared > cap:
        resp.close()
        raise BodyTooLarge(cap)
    encoded = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if declared is not None and encoded in ("", "identity"):
        # The parser stops at Content-Length: one read, no copy (the large-answer hot path).
        return await resp.read()
    parts: list[bytes] = []
    total = 0
    while chunk := await resp.content.readany():
        total += len(chunk)
        if total > cap:
            resp.close()  # drop the connection: the rest is never read
            # The exception's traceback keeps this frame alive as long as anyone holds the
            # error (chained as __context__ of what the caller raises): let the bytes go now.
            parts.clear()
            raise BodyTooLarge(cap)
        parts.append(chunk)
    return b"".join(parts)
