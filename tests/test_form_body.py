"""Provider multipart bodies: what a real multipart server reads back is exactly what we meant."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
from aiohttp import web

from imagegate.providers.core.form import form_body
from imagegate.request import UploadedFile

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000) + b"\r\n--imagegate-\r\n"


async def _echo_server() -> tuple[web.AppRunner, str, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        parts: list[tuple[str, str | None, str | None, bytes]] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, aiohttp.BodyPartReader)
            parts.append(
                (
                    part.name or "",
                    part.filename,
                    part.headers.get("Content-Type"),
                    await part.read(),
                )
            )
        seen.append(
            {
                "parts": parts,
                "length": request.content_length,
                "chunked": request.headers.get("Transfer-Encoding"),
            }
        )
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_post("/edits", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/edits", seen


async def test_a_real_multipart_server_reads_back_every_field_and_file() -> None:
    image = UploadedFile("image", 'we"ird\r\nname.png', "png", len(PNG), data=PNG)
    mask = UploadedFile("mask", "mask.png", "png", 8, data=PNG[:8])
    fields = [("model", "dall-e-2"), ("prompt", 'a hat, "quoted"\r\nand ünïcode'), ("n", "2")]
    body = form_body(fields, [("image[]", image), ("image[]", image), ("mask", mask)])
    assert body is not None
    runner, url, seen = await _echo_server()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):  # the same body can be sent again (a retry)
                async with session.post(url, data=body) as resp:
                    assert resp.status == 200
    finally:
        await runner.cleanup()
    for got in seen:
        assert got["chunked"] is None and got["length"] == body.size  # Content-Length, exact
        assert got["parts"] == [
            ("model", None, None, b"dall-e-2"),
            ("prompt", None, None, fields[1][1].encode()),
            ("n", None, None, b"2"),
            ("image[]", "we%22ird%0D%0Aname.png", "image/png", PNG),
            ("image[]", "we%22ird%0D%0Aname.png", "image/png", PNG),
            ("mask", "mask.png", "image/png", PNG[:8]),
        ]


def test_a_spooled_upload_is_left_to_aiohttp_which_streams_files(tmp_path: Any) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(PNG)
    spooled = UploadedFile("image", "big.png", "png", len(PNG), path=str(path))
    assert form_body([("model", "m")], [("image", spooled)]) is None
