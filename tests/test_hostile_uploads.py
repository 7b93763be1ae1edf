"""Hostile bodies over real HTTP: every bound on JSON, multipart, time, disk, pixels, and the
coalesced cache flight that must keep the leader's uploads alive. One attack per test.

Stalled clients are raw sockets that send headers and part of a body, then block on ``recv``
(the socket timeout is only a safety bound). Nothing waits on the clock to synchronise: the
tests poll a condition (spool bytes held, flight waiters) with a bound, or wait on an event.
"""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from fakes.openai import FakeOpenAI
from imagekit import png, solid
from live import EDITS, GEN, LiveAiohttp, LiveGateway, live_gateway, post
from PIL import Image

from imagegate.api.spool import held_bytes
from imagegate.cli import check_bind
from imagegate.config import Config, load_config
from imagegate.imageinfo import probe

BOUNDARY = "hostile0boundary"
SAFETY_S = 10.0  # bound on every wait; never reached when the gateway behaves


# --- helpers --------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until true, failing after ``SAFETY_S``."""
    deadline = time.monotonic() + SAFETY_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        threading.Event().wait(0.005)  # a poll interval, not synchronisation


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_with_header(width: int, height: int, idat: bytes, *, bit_depth: int = 8) -> bytes:
    """A grayscale PNG declaring ``width`` x ``height`` around the given IDAT bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def truncated_huge_png(side: int = 13_000) -> bytes:
    """A valid header for side x side and the start of an IDAT: tiny on disk."""
    return png_with_header(side, side, zlib.compress(b"\0" * 4096)[:40])


def png_bomb(side: int = 20_000) -> bytes:
    """A real decompression bomb: side x side 1-bit pixels, all zero, deflated (~50 KB)."""
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    return png_with_header(side, side, idat, bit_depth=1)


def jpeg_with_header(width: int, height: int, app_bytes: int = 0) -> bytes:
    """A JPEG header (APP1 padding, SOF0, SOS) declaring ``width`` x ``height``."""
    out = b"\xff\xd8"
    while app_bytes > 0:
        size = min(app_bytes, 65_000)
        out += b"\xff\xe1" + struct.pack(">H", size + 2) + b"\0" * size
        app_bytes -= size
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    out += b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof
    sos = b"\x01\x01\x00\x00\x3f\x00"
    return out + b"\xff\xda" + struct.pack(">H", len(sos) + 2) + sos + b"\0" * 64


def webp_vp8x(width: int, height: int) -> bytes:
    payload = b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def form(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> bytes:
    out = b""
    for name, value in fields.items():
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    for name, filename, data in files:
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'
        ).encode() + data
        out += b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


class RawClient:
    """One HTTP/1.1 request written by hand, so a test can stop sending whenever it likes."""

    def __init__(self, gw: LiveGateway) -> None:
        self.sock = socket.create_connection(("127.0.0.1", gw.port), timeout=SAFETY_S)

    def send_head(self, path: str, content_type: str, length: int | None) -> None:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        head += f"Content-Length: {length}\r\n" if length is not None else ""
        self.sock.sendall((head + "\r\n").encode())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], Any]:
        """Block until the whole response is in (or the socket timeout, as a safety bound)."""
        raw = b""
        while b"\r\n\r\n" not in raw:
            got = self.sock.recv(65536)
            assert got, f"connection closed before a response: {raw!r}"
            raw += got
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        headers = {k.lower(): v for k, v in headers.items()}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            got = self.sock.recv(65536)
            assert got, "connection closed mid-response"
            body += got
        return int(lines[0].split()[1]), headers, orjson.loads(body) if body else None

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def uploads_dir(tmp_path: Path) -> Path:
    path = tmp_path / "uploads"
    path.mkdir()
    return path


@pytest.fixture
def gateway(make_config: Any, uploads_dir: Path) -> Iterator[Callable[..., LiveGateway]]:
    """Start a gateway with these ``limits`` (and optional extra config); stopped at the end."""
    stack: list[Any] = []

    def start(providers: dict[str, Any] | None = None, **limits: Any) -> LiveGateway:
        config = make_config(
            uploads={"spool_bytes": 1024, "tmp_dir": str(uploads_dir)},
            limits=limits,
            providers=providers or {},
        )
        cm = live_gateway(config)
        stack.append(cm)
        return cm.__enter__()

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)
    assert held_bytes() == 0, "spool bytes leaked"


def error_of(r: httpx.Response) -> tuple[int, str, str | None]:
    err = r.json()["error"]
    return r.status_code, err["code"], err["param"]


# --- JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [17, 5000])
def test_deep_json_is_400(gateway: Callable[..., LiveGateway], depth: int) -> None:
    gw = gateway()
    nested = "[" * depth + "]" * depth
    body = f'{{"model": "placeholder/x", "prompt": "p", "metadata": {nested}}}'
    r = post(gw, GEN, content=body, headers={"content-type": "application/json"})
    assert error_of(r) == (400, "invalid_request_body", "body")
    assert "nests deeper than 16" in r.json()["error"]["message"]


def test_brackets_inside_strings_are_not_depth(gateway: Callable[..., LiveGateway]) -> None:
    gw = gateway()
    r = post(gw, GEN, json={"model": "placeholder/x", "prompt": "[{" * 40, "size": "16x16"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("how", ["content-length", "chunked"])
def test_oversize_json_is_413(gateway: Callable[..., LiveGateway], how: str) -> None:
    gw = gateway(max_json_bytes=4096)
    body = orjson.dumps({"model": "placeholder/x", "prompt": "x" * 5000})
    content: Any = body if how == "content-length" else iter([body[:3000], body[3000:]])
    r = post(gw, GEN, content=content, headers={"content-type": "application/json"})
    assert error_of(r) == (413, "payload_too_large", "body")
    assert r.json()["error"]["message"] == "JSON body exceeds 4 KB"


def test_declared_oversize_json_is_413_before_any_byte(
    gateway: Callable[..., LiveGateway],
) -> None:
    """Refused on Content-Length alone: no body is ever sent, and no timeout is involved."""
    gw = gateway(max_json_bytes=4096, body_idle_timeout_s=60)
    client = RawClient(gw)
    try:
        client.send_head(GEN, "application/json", 10**9)
        status, _, body = client.response()
    finally:
        client.close()
    assert (status, body["error"]["code"]) == (413, "payload_too_large")


# --- multipart ------------------------------------------------------------------------------


def test_multipart_over_total_cap_is_413_naming_the_part(
    gateway: Callable[..., LiveGateway], uploads_dir: Path
) -> None:
    gw = gateway(max_multipart_bytes=100_000)
    image = png() + b"\0" * 60_000  # each file is fine alone; together they are not
    files = [("image", (f"{i}.png", image, "image/png")) for i in range(2)]
    r = post(gw, EDITS, data={"model": "placeholder/x", "prompt": "p"}, files=files)
    assert error_of(r) == (413, "payload_too_large", "image")
    assert list(uploads_dir.iterdir()) == []


def test_spool_budget_exhausted_is_503_with_retry_after(
    gateway: Callable[..., LiveGateway], uploads_dir: Path
) -> None:
    gw = gateway(max_spooled_bytes=100_000, body_idle_timeout_s=60)
    head = form({"model": "placeholder/x", "prompt": "p"}, [])[: -len(f"--{BOUNDARY}--\r\n")]
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
        'filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()
    stalled = RawClient(gw)
    try:
        stalled.send_head(EDITS, MULTIPART, len(head) + 200_000)
        stalled.send(head + png() + b"\0" * 70_000)  # then nothing more: held in flight
        wait_for(lambda: held_bytes() >= 60_000, "the stalled upload's bytes on disk")
        second = form(
            {"model": "placeholder/x", "prompt": "p"}, [("image", "b.png", png() + b"\0" * 60_000)]
        )
        r = post(gw, EDITS, content=second, headers={"content-type": MULTIPART})
        assert error_of(r) == (503, "service_unavailable", None)
        assert r.headers["retry-after"] == "5"
        assert len(list(uploads_dir.iterdir())) == 1  # only the stalled upload's file
    finally:
        stalled.close()  # the first client goes away: its file and bytes are released
    wait_for(lambda: held_bytes() == 0, "the stalled upload's bytes released")
    wait_for(lambda: not list(uploads_dir.iterdir()), "the stalled upload's file removed")


# --- slow bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"body_idle_timeout_s": 0.3}, "no request body data for 0.3 s"),
        ({"body_timeout_s": 0.3}, "the request body took longer than 0.3 s"),
    ],
)
def test_slowloris_json_is_408(
    gateway: Callable[..., LiveGateway], limits: dict[str, float], message: str
) -> None:
    gw = gateway(**limits)
    client = RawClient(gw)
    try:
        client.send_head(GEN, "application/json", 200)
        client.send(b'{"model": "placeholder/x", "prompt": "')  # then stall
        status, headers, body = client.response()
    finally:
        client.close()
    assert status == 408
    assert body["error"] == {
        "message": message,
        "type": "timeout_error",
        "param": "body",
        "code": "request_timeout",
    }
    assert "x-orq-trace-id" in headers


def test_slowloris_multipart_is_408_and_leaves_no_temp_file(
    gateway: Callable[..., LiveGateway], uploads_dir: Path
) -> None:
    gw = gateway(body_idle_timeout_s=0.3)
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
        'filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()
    client = RawClient(gw)
    try:
        client.send_head(EDITS, MULTIPART, len(head) + 100_000)
        client.send(head + png() + b"\0" * 20_000)  # past spool_bytes: on disk, then stall
        status, _, body = client.response()
    finally:
        client.close()
    assert (status, body["error"]["code"], body["error"]["type"]) == (
        408,
        "request_timeout",
        "timeout_error",
    )
    assert list(uploads_dir.iterdir()) == []
    assert held_bytes() == 0


# --- pixels -----------------------------------------------------------------------------------


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _edit_with(gw: LiveGateway, **files: tuple[str, bytes]) -> httpx.Response:
    parts = [(name, (filename, data, "image/png")) for name, (filename, data) in files.items()]
    return post(gw, EDITS, data={"model": "openai/dall-e-2", "prompt": "p"}, files=parts)


def test_huge_mask_is_400_before_decode_and_upstream(
    gateway: Callable[..., LiveGateway], openai_fake: FakeOpenAI, uploads_dir: Path
) -> None:
    mask = truncated_huge_png()
    with pytest.warns(Image.DecompressionBombWarning):  # Pillow alone would only warn
        assert len(mask) < 200 and Image.open(io.BytesIO(mask)).size == (13_000, 13_000)
    gw = gateway(providers=openai_fake.providers())
    r = _edit_with(gw, image=("a.png", png()), mask=("m.png", mask))
    assert error_of(r) == (400, "invalid_image", "mask")
    assert "13000x13000" in r.json()["error"]["message"]
    assert openai_fake.requests == []
    assert list(uploads_dir.iterdir()) == []


def test_decompression_bomb_image_is_400_before_decode_and_upstream(
    gateway: Callable[..., LiveGateway], openai_fake: FakeOpenAI, uploads_dir: Path
) -> None:
    bomb = png_bomb()  # spooled (past spool_bytes): checked from the head kept in memory
    assert 1024 < len(bomb) < 200_000
    gw = gateway(providers=openai_fake.providers())
    r = _edit_with(gw, image=("bomb.png", bomb))
    assert error_of(r) == (400, "invalid_image", "image")
    assert openai_fake.requests == []
    assert list(uploads_dir.iterdir()) == []


@pytest.mark.parametrize(
    "data",
    [
        jpeg_with_header(20_000, 20_000),
        jpeg_with_header(20_000, 20_000, app_bytes=150_000),
        webp_vp8x(20_000, 20_000),
    ],
    ids=["jpeg", "jpeg-header-past-64k", "webp"],
)
def test_huge_jpeg_and_webp_are_400(
    gateway: Callable[..., LiveGateway], openai_fake: FakeOpenAI, data: bytes
) -> None:
    gw = gateway(providers=openai_fake.providers())
    r = _edit_with(gw, image=("a.png", data))
    assert error_of(r) == (400, "invalid_image", "image")
    assert openai_fake.requests == []


def test_placeholder_cap_is_the_configured_one(gateway: Callable[..., LiveGateway]) -> None:
    gw = gateway(max_image_pixels=100)
    files = [("image", ("a.png", png(size=16), "image/png"))]  # 256 pixels
    r = post(gw, EDITS, data={"model": "placeholder/x", "prompt": "p"}, files=files)
    assert error_of(r) == (400, "invalid_image", "image")


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("PNG", "RGBA", {}),
        ("PNG", "1", {}),
        ("JPEG", "RGB", {}),
        ("JPEG", "RGB", {"progressive": True}),
        ("JPEG", "L", {"exif": b"Exif\0\0" + b"\0" * 5000}),
        ("WEBP", "RGB", {}),
        ("WEBP", "RGB", {"lossless": True}),
        ("WEBP", "RGBA", {}),
        ("WEBP", "RGB", {"exif": b"Exif\0\0" + b"\0" * 64}),
    ],
)
@pytest.mark.parametrize("size", [(1, 1), (333, 17), (1000, 2001)])
def test_header_probe_agrees_with_pillow(
    fmt: str, mode: str, options: dict[str, Any], size: tuple[int, int]
) -> None:
    data = solid(size, 0, mode, fmt, **options)
    kind = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}[fmt]
    info = probe(data)
    assert info is not None and info.kind == kind
    assert (info.width, info.height) == Image.open(io.BytesIO(data)).size == size
    short = probe(data[:20])  # a head too short to tell: no size rather than a wrong one
    assert short is None or (short.width, short.height) == size


# --- coalescing -----------------------------------------------------------------------------


class GatedUpstream:
    """An OpenAI-style edits endpoint: the first call waits for ``release`` then answers 429;
    later calls answer at once with a PNG. Records the image bytes of every call."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.images: list[bytes] = []
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/images/edits", self._edits)
        self.server = LiveAiohttp(app)

    async def _edits(self, request: web.Request) -> web.Response:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            data = bytes(await part.read(decode=False))  # type: ignore[union-attr]
            if part.name == "image":
                self.images.append(data)
        if len(self.images) == 1:
            self.arrived.set()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.release.wait, SAFETY_S)
            return web.json_response(
                {"error": {"message": "busy"}}, status=429, headers={"Retry-After": "0"}
            )
        picture = base64.b64encode(png(3)).decode()
        return web.json_response({"created": 1, "data": [{"b64_json": picture}]})


def test_coalesced_flight_keeps_the_leaders_uploads_when_the_leader_leaves(
    gateway: Callable[..., LiveGateway], uploads_dir: Path
) -> None:
    upstream = GatedUpstream()
    image = png() + bytes(range(256)) * 40  # ~10 KB: spooled past spool_bytes
    orq = {"retry": {"count": 1, "on_codes": [429]}, "cache": {"type": "exact_match"}}
    body = form(
        {
            "model": "openai/dall-e-2",
            "prompt": "p",
            "response_format": "b64_json",
            "orq": orjson.dumps(orq).decode(),
        },
        [("image", "a.png", image)],
    )
    with upstream.server, ThreadPoolExecutor(1) as pool:
        providers = {"openai": {"api_key": "k", "base_url": upstream.server.url + "/v1"}}
        gw = gateway(providers=providers)
        inflight = gw.gateway.cache_layer.inflight
        leader = RawClient(gw)
        try:
            leader.send_head(EDITS, MULTIPART, len(body))
            leader.send(body)
            assert upstream.arrived.wait(SAFETY_S), "the leader's call never reached upstream"
            follower = pool.submit(
                post, gw, EDITS, content=body, headers={"content-type": MULTIPART}
            )
            wait_for(lambda: inflight.waiters() == 2, "the follower to join the flight")
        finally:
            leader.close()
        wait_for(lambda: inflight.waiters() == 1, "the leader to leave")
        upstream.release.set()  # attempt 1 answers 429; attempt 2 re-sends the leader's file
        r = follower.result(timeout=SAFETY_S)
    assert r.status_code == 200, r.text
    assert r.headers["x-orq-cache"] == "HIT"  # coalesced
    assert upstream.images == [image, image]
    wait_for(lambda: not list(uploads_dir.iterdir()), "every temp file removed")
    assert held_bytes() == 0


# --- bind -------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::"])
def test_every_interface_without_keys_is_refused(host: str) -> None:
    problem = check_bind(load_config(env={}, overrides={"host": host}))
    assert problem is not None and "api_keys" in problem
    assert check_bind(Config(host=host, api_keys=["k"])) is None


# --- masks are converted once per request ------------------------------------------------------


async def test_mask_conversions_are_made_once_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry or a fallback reuses the converted mask instead of decoding it again."""
    from imagegate import imaging
    from imagegate.providers.core import masks
    from imagegate.request import UploadedFile

    calls: list[str] = []
    real_run = imaging.run

    async def counting_run(fn: Callable[..., Any], *args: object) -> Any:
        calls.append(fn.__name__)
        return await real_run(fn, *args)

    monkeypatch.setattr(imaging, "run", counting_run)
    mask = UploadedFile.from_bytes(solid(8, (0, 0, 0, 0), "RGBA"), field="mask")
    image = UploadedFile.from_bytes(png())
    for _ in range(3):
        white = await masks.provider_mask(mask, "white")
        await masks.provider_mask(mask, "black")
        await masks.alpha_mask(mask, "black")
        await masks.edit_mask_png(mask, image)
    assert Image.open(io.BytesIO(white)).getpixel((0, 0)) == 255  # transparent = edit
    # one converter: the white-is-edit mask edit_mask_png asks for is the one made above
    assert sorted(calls) == ["_alpha_mask", "_convert_mask", "_convert_mask"]
