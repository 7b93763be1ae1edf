"""Per-step costs of the image paths, measured in-process (``python -m bench.micro``).

The load benchmark says how much CPU a request costs; a profile says roughly where. This puts
a number on each building block a 1.5 MB base64 answer or a 1 MB upload goes through, so a
proposed change can be priced before it is made. Run it pinned (``taskset -c 1``) for
steadier numbers.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import orjson

from imagegate.blobs import LocalBlobStore
from imagegate.providers.core import jsonsplice
from imagegate.telemetry.trace import new_trace_id

from .upstream import b64_text, noise_png


def best_of(fn: Callable[[], Any], *, runs: int = 7, min_s: float = 0.05) -> float:
    """Best per-call time in ms over ``runs`` batches of at least ``min_s`` each."""
    best = float("inf")
    for _ in range(runs):
        n, started = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - started
            if elapsed >= min_s:
                break
        best = min(best, elapsed / n)
    return best * 1000


def steps() -> list[tuple[str, Callable[[], Any]]]:
    text = b64_text(1_500_000)
    raw = base64.b64decode(text)
    upstream_body = orjson.dumps({"created": 1, "data": [{"b64_json": text}]})
    answer = {"created": 1, "data": [{"b64_json": text}]}
    upload = noise_png(1_000_000)
    chunks = [upload[i : i + 65536] for i in range(0, len(upload), 65536)]
    tmpdir = tempfile.mkdtemp(prefix="imagegate-micro-", dir=os.getcwd())  # the real disk
    files = LocalBlobStore(os.path.join(tmpdir, "store"))
    files_only = LocalBlobStore(os.path.join(tmpdir, "files"), pack_max_bytes=0)
    form = (
        b"--" + FORM_BOUNDARY + b'\r\nContent-Disposition: form-data; name="image"; '
        b'filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        + upload
        + b"\r\n--"
        + FORM_BOUNDARY
        + b"--\r\n"
    )
    form_chunks = [form[i : i + 65536] for i in range(0, len(form), 65536)]
    atexit.register(shutil.rmtree, tmpdir, True)
    out: list[tuple[str, Callable[[], Any]]] = [
        ("orjson.loads(1.5 MB upstream body)", lambda: orjson.loads(upstream_body)),
        ("orjson.dumps(answer with 1.5 MB str)", lambda: orjson.dumps(answer)),
        (
            "bytes splice of the b64 span (no JSON)",
            lambda: b"".join(
                (b'{"created":1,"data":[{"b64_json":"', memoryview(upstream_body)[35:-4], b'"}]}')
            ),
        ),
        ("base64 decode 1.5 MB (stdlib)", lambda: base64.b64decode(text)),
        ("sha256 of 1.1 MB image", lambda: hashlib.sha256(raw).digest()),
        ("blake2b of 1.1 MB image", lambda: hashlib.blake2b(raw, digest_size=32).digest()),
        ("sha256 of 1 MB upload in 64 KB chunks", lambda: _chunked_sha(chunks)),
        ("write 1.1 MB blob (tmp + rename, same name)", lambda: _write_blob(tmpdir, raw)),
        ("write 1.1 MB blob, new file (LocalBlobStore)", lambda: _put(files, raw, cold=False)),
        ("write 1.1 MB blob, new file, O_DIRECT (cold)", lambda: _put(files, raw, cold=True)),
        ("write 1 KB blob, new file", lambda: _put(files_only, os.urandom(1000))),
        ("write 1 KB blob, pack.db row", lambda: _put(files, os.urandom(1000))),
        ("jsonsplice.loads(1.5 MB upstream body)", lambda: jsonsplice.loads(upstream_body)),
        ("multipart 1 MB: python-multipart", lambda: _python_multipart(form_chunks)),
        ("new_trace_id()", new_trace_id),
        ("BytesIO(1 MB).getbuffer() (forces a copy)", lambda: _bytesio_copy(upload)),
        ("1 MB upload: BytesIO writes + getvalue", lambda: _bytesio_collect(chunks)),
        ("1 MB upload: list + b''.join", lambda: b"".join(list(chunks))),
    ]
    try:
        import pybase64

        out.insert(4, ("base64 decode 1.5 MB (pybase64)", lambda: pybase64.b64decode(text)))
    except ImportError:  # pragma: no cover
        pass
    try:
        from ulid import ULID

        out.append(("str(ULID()) trace id", lambda: str(ULID())))
    except ImportError:  # pragma: no cover
        pass
    out.append(("os.urandom(10) + time_ns (ULID parts)", lambda: (os.urandom(10), time.time_ns())))
    return out


def async_steps() -> list[tuple[str, Callable[[], Any]]]:
    """Event-loop mechanics paid per request (each runs many times inside one loop)."""
    import asyncio
    import hashlib as _hashlib

    small = noise_png(1024)

    async def nothing() -> None:
        return None

    async def hop() -> None:
        await asyncio.to_thread(_hashlib.sha256, small)

    async def inline() -> None:
        _hashlib.sha256(small).digest()

    async def watched() -> None:  # the endpoint's shape: work task + watcher task + wait
        work = asyncio.ensure_future(nothing())
        watcher = asyncio.ensure_future(asyncio.sleep(3600))
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        watcher.cancel()

    async def plain() -> None:
        await nothing()

    def in_loop(make: Callable[[], Any], n: int = 2000) -> Callable[[], Any]:
        async def many() -> None:
            for _ in range(n):
                await make()

        return lambda: asyncio.run(many())

    n = 2000
    return [
        (f"asyncio.to_thread(sha256 of 1 KB) x{n}", in_loop(hop, n)),
        (f"inline sha256 of 1 KB x{n}", in_loop(inline, n)),
        (f"task + watcher task + asyncio.wait x{n}", in_loop(watched, n)),
        (f"plain await x{n}", in_loop(plain, n)),
    ]


def _chunked_sha(chunks: list[bytes]) -> bytes:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.digest()


def _write_blob(directory: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, os.path.join(directory, "blob"))


FORM_BOUNDARY = b"micro-boundary-5d1"


def _put(store: LocalBlobStore, data: bytes, *, cold: bool = False) -> None:
    store.put_sync(hashlib.sha256(data + os.urandom(8)).hexdigest(), data, cold=cold)


def _python_multipart(chunks: list[bytes]) -> None:
    from python_multipart.multipart import MultipartParser

    parser = MultipartParser(FORM_BOUNDARY, {"on_part_data": lambda data, start, end: None})
    for chunk in chunks:
        parser.write(chunk)
    parser.finalize()


def _bytesio_copy(data: bytes) -> None:
    buf = io.BytesIO(data)
    with buf.getbuffer() as view:
        len(view)


def _bytesio_collect(chunks: list[bytes]) -> bytes:
    buf = io.BytesIO()
    for chunk in chunks:
        buf.write(chunk)
    return buf.getvalue()


def main() -> int:
    print("| step | ms per call |\n|---|---:|")
    for name, fn in steps():
        print(f"| {name} | {best_of(fn):.3f} |", flush=True)
    for name, fn in async_steps():
        per_call = best_of(fn, runs=3, min_s=0.0) / 2000
        print(f"| {name.split(' x')[0]} (per request) | {per_call:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
