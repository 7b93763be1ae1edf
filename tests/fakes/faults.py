"""The faults a fake can play instead of a clean answer (see ``core.Reply``): a delay that
notices the caller leaving, a connection reset, a truncated body."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

from aiohttp import web


async def still_connected_after(request: web.Request, delay_s: float) -> bool:
    """Wait ``delay_s`` in small steps; False as soon as the caller has gone away."""
    loop = asyncio.get_running_loop()
    end = loop.time() + delay_s
    while (left := end - loop.time()) > 0:
        transport = request.transport
        if transport is None or transport.is_closing():
            return False
        await asyncio.sleep(min(0.01, left))
    transport = request.transport
    return transport is not None and not transport.is_closing()


def reset_connection(request: web.Request) -> None:
    """Close with RST (SO_LINGER 0): the client sees a reset, not a clean close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def truncated_json(request: web.Request, doc: Any) -> web.StreamResponse:
    """Promise ``doc`` as JSON, send half of it, close."""
    payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(payload)
    await response.prepare(request)
    await response.write(payload[: len(payload) // 2])
    if request.transport is not None:
        request.transport.close()
    return response
