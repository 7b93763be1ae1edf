"""A hostile OpenAI-compatible provider for the abuse scenario, and an internal server beside it.

``python -m bench.hostile --port 0`` listens on two loopback ports and prints
``READY <provider port> <internal port>``. The provider answers by model name:

    evil/internal    a URL on the internal server (another loopback port): SSRF read-back
    evil/metadata    a URL on 169.254.169.254 (cloud metadata); never connected to by a
                     correct gateway, and nothing listens there here
    evil/redirect    a URL on the provider's own host that redirects to the internal server
    evil/notimage    base64 of text, not an image
    evil/huge        300 MB of base64 that is not an image, streamed (chunked, no length)

The internal server answers ``GET /secret`` with a secret and counts the hits it got
(``GET /hits`` on the provider port reports them): a correct gateway makes that count 0.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import signal

import orjson
from aiohttp import web

SECRET = b"internal-secret-do-not-leak"
HUGE_BYTES = 300 * 1024 * 1024
CHUNK = b"A" * (1024 * 1024)


class Hostile:
    def __init__(self) -> None:
        self.hits = 0
        self.provider_port = 0
        self.internal_port = 0

    async def generations(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        model = str(body.get("model", ""))
        own = f"http://127.0.0.1:{self.provider_port}"
        urls = {
            "internal": f"http://127.0.0.1:{self.internal_port}/secret",
            "metadata": "http://169.254.169.254/latest/meta-data/iam/",
            "redirect": f"{own}/redirect",
        }
        if model in urls:
            return web.json_response({"created": 1, "data": [{"url": urls[model]}]})
        if model == "notimage":
            text = base64.b64encode(b"this is not an image " * 64).decode()
            return web.json_response({"created": 1, "data": [{"b64_json": text}]})
        if model == "huge":
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(b'{"created":1,"data":[{"b64_json":"')
            try:
                for _ in range(HUGE_BYTES // len(CHUNK)):
                    await resp.write(CHUNK)
                await resp.write(b'"}]}')
            except (ConnectionResetError, ConnectionError):
                pass  # the gateway cut it off: what it should do
            return resp
        return web.json_response({"error": {"message": f"unknown model {model}"}}, status=400)

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{self.internal_port}/secret")

    async def secret(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(body=SECRET, content_type="image/png")  # lies about its type

    async def report(self, request: web.Request) -> web.Response:
        return web.json_response({"internal_hits": self.hits})


async def serve(port: int) -> None:
    hostile = Hostile()
    provider = web.Application(client_max_size=1024 * 1024)
    provider.router.add_post("/v1/images/generations", hostile.generations)
    provider.router.add_get("/redirect", hostile.redirect)
    provider.router.add_get("/hits", hostile.report)
    internal = web.Application()
    internal.router.add_get("/secret", hostile.secret)
    runners = [web.AppRunner(provider, access_log=None), web.AppRunner(internal, access_log=None)]
    sites = []
    for runner, wanted in zip(runners, (port, 0), strict=True):
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", wanted)
        await site.start()
        sites.append(site)
    socks = [site._server.sockets[0] for site in sites]  # type: ignore[union-attr]
    hostile.provider_port, hostile.internal_port = (s.getsockname()[1] for s in socks)
    print(f"READY {hostile.provider_port} {hostile.internal_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile")
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
