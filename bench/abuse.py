"""The ``abuse`` scenario: hostile requests against one gateway, one attack at a time.

For each attack it records the answers (every one must be the expected refusal), the peak RSS
growth of the gateway over its RSS when the attack began, and the worst ``GET /health``
latency seen while the attack ran (a poller sends one health check after another) — a
gateway that does the attacker's work on its event loop shows it there. The hostile provider
(``bench.hostile``) also runs an internal server whose hit count must stay 0.

    python -m bench.run --scenarios abuse            # alone (about a minute)

Every attack is bounded in count; every request has a timeout; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import socket
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from . import procs, targets
from .upstream import noise_png

GEN = "/v2/router/images/generations"
EDITS = "/v2/router/images/edits"
BOUNDARY = "imagegate-abuse-5b1d"


@dataclass(frozen=True)
class Attack:
    name: str
    title: str
    expected: frozenset[int]
    requests: int
    concurrency: int
    send: Callable[[httpx.Client], int]  # one attack request → the status it got


def png_of(width: int, height: int) -> bytes:
    """A real, tiny-on-disk grey PNG of ``width`` x ``height`` (zeros compress ~1000:1)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    rows = [comp.compress(row * 256) for _ in range(height // 256)]
    rows.append(comp.compress(row * (height % 256)))
    rows.append(comp.flush())
    idat = b"".join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    sig = b"\x89PNG\r\n\x1a\n"
    return sig + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def multipart(fields: dict[str, str], files: dict[str, bytes]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    for name, data in files.items():
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.png"\r\nContent-Type: image/png\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def attacks(gateway: str, key: str) -> list[Attack]:
    """The attacks, each a function of one HTTP client."""
    auth = {"Authorization": f"Bearer {key}"}

    def post_json(body: Any) -> Callable[[httpx.Client], int]:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {**auth, "Content-Type": "application/json"}
        return lambda http: http.post(GEN, content=raw, headers=headers).status_code

    def gen(model: str, **extra: Any) -> dict[str, Any]:
        return {"model": model, "prompt": "a fox", "response_format": "b64_json", **extra}

    lb = [{"model": f"placeholder/m{i}", "weight": 0.5} for i in range(20_000)]
    mask_body = multipart(
        {"model": "placeholder/x", "prompt": "a hat", "size": "256x256"},
        {"image": noise_png(4096), "mask": png_of(13_000, 13_000)},
    )
    mask_headers = {**auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    fake_key = "0" * 64

    def garbage(http: httpx.Client) -> int:
        a = http.get(f"/v2/files/{fake_key}", params={"expires": "\u00b2", "sig": "00"})
        b = http.get("/v2/traces", params={"limit": "\u00b2"}, headers=auth)
        return max(a.status_code, b.status_code)

    deep = b"[" * 200_000 + b"]" * 200_000
    bomb = gen("placeholder/x", prompt="p" * 30_000, orq={"prompt": {"id": "bomb"}})
    return [
        Attack(
            "lb20k",
            "20,000 load-balancer entries",
            frozenset({400}),
            20,
            4,
            post_json(gen("placeholder/x", orq={"load_balancer": {"models": lb}})),
        ),
        Attack("deep_json", "JSON nested 200,000 deep", frozenset({400}), 20, 4, post_json(deep)),
        Attack(
            "big_json",
            "8 MB JSON body",
            frozenset({413}),
            10,
            2,
            post_json(gen("placeholder/x", prompt="x" * 8_000_000)),
        ),
        Attack(
            "template",
            "3,000 {{input}} template x 30,000-char prompt",
            frozenset({400}),
            20,
            4,
            post_json(bomb),
        ),
        Attack(
            "mask",
            "13000x13000 PNG mask (~170 KB on the wire)",
            frozenset({400}),
            10,
            2,
            lambda http: http.post(EDITS, content=mask_body, headers=mask_headers).status_code,
        ),
        Attack(
            "ssrf_internal",
            "provider answers a URL on another loopback port",
            frozenset({502}),
            10,
            2,
            post_json(gen("evil/internal")),
        ),
        Attack(
            "ssrf_metadata",
            "provider answers a 169.254.169.254 URL",
            frozenset({502}),
            10,
            2,
            post_json(gen("evil/metadata")),
        ),
        Attack(
            "ssrf_redirect",
            "provider's own URL redirects to an internal port",
            frozenset({502}),
            10,
            2,
            post_json(gen("evil/redirect")),
        ),
        Attack(
            "not_image",
            "provider answers base64 text as the image",
            frozenset({502}),
            20,
            4,
            post_json(gen("evil/notimage")),
        ),
        Attack(
            "huge_answer",
            "provider streams 300 MB of base64",
            frozenset({502}),
            3,
            1,
            post_json(gen("evil/huge")),
        ),
        Attack(
            "query_garbage",
            "signed-URL and control query garbage",
            frozenset({400}),
            20,
            4,
            garbage,
        ),
    ]


class HealthPoller:
    """Sends ``GET /health`` back to back in a thread; ``worst_ms`` is the slowest answer."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.worst_ms = 0.0
        self.checks = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as http:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    ok = http.get("/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.worst_ms = max(self.worst_ms, (time.perf_counter() - start) * 1000)
                self.checks += 1
                self.failures += not ok
                self._stop.wait(0.005)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=70)


def slowloris(port: int, key: str, connections: int, *, limit_s: float = 30.0) -> Counter[int]:
    """Connections that send headers and half a body, then stall: each must get a 408.

    Bounded: after ``limit_s`` in all, connections still waiting are counted as status 0."""
    deadline = time.monotonic() + limit_s
    statuses: Counter[int] = Counter()
    socks = []
    head = (
        f"POST {GEN} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(head + b'{"model": "placeholder/x", "prompt": "')
        socks.append(sock)
    for sock in socks:
        try:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            line = sock.recv(4096).split(b"\r\n", 1)[0]
            statuses[int(line.split()[1])] += 1
        except (OSError, IndexError, ValueError):
            statuses[0] += 1
        finally:
            sock.close()
    return statuses


def run_attack(attack: Attack, base: str, pid: int) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    with procs.RssSampler(pid, every_s=0.01) as rss, HealthPoller(base) as health:
        with httpx.Client(base_url=base, timeout=120) as http:
            with concurrent.futures.ThreadPoolExecutor(attack.concurrency) as pool:
                futures = [pool.submit(attack.send, http) for _ in range(attack.requests)]
                for future in futures:
                    try:
                        statuses[future.result()] += 1
                    except httpx.HTTPError:
                        statuses[0] += 1
    return _row(attack.name, attack.title, attack.expected, statuses, rss, health)


def _row(
    name: str,
    title: str,
    expected: frozenset[int],
    statuses: Counter[int],
    rss: procs.RssSampler,
    health: HealthPoller,
) -> dict[str, Any]:
    return {
        "attack": name,
        "title": title,
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "expected": sorted(expected),
        "as_expected": set(statuses) <= expected,
        "rss_growth_mb": round((rss.peak - rss.start_bytes) / 2**20, 1),
        "worst_health_ms": round(health.worst_ms, 1),
        "health_checks": health.checks,
        "health_failures": health.failures,
    }


def run(
    out: Path,
    *,
    gateway_cpus: str | None,
    side_cpus: str | None,
    env: dict[str, str] | None = None,
    only: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Start the hostile provider and a fresh gateway, run every attack, stop both."""
    hostile = procs.start(
        "hostile",
        [sys.executable, "-m", "bench.hostile", "--port", "0"],
        log_path=out / "hostile.log",
        cpus=side_cpus,
        cwd=Path(__file__).resolve().parent.parent,
    )
    gateway: targets.Endpoint | None = None
    rows: list[dict[str, Any]] = []
    try:
        port, internal = (int(p) for p in procs.wait_ready_line(hostile, "READY ").split())
        evil = {
            "type": "openai-compatible",
            "base_url": f"http://127.0.0.1:{port}/v1",
            "api_key": "sk-hostile",
        }
        overrides = [
            f"providers.evil={orjson.dumps(evil).decode()}",
            "limits.body_idle_timeout_s=2",
        ]
        workdir = out / "work" / "imagegate-abuse"
        shutil.rmtree(workdir, ignore_errors=True)  # a fresh gateway: no prompt, no traces
        gateway = targets.start_imagegate(
            workdir, f"http://127.0.0.1:{port}/v1", cpus=gateway_cpus, overrides=overrides, env=env
        )
        assert gateway.proc is not None
        base = gateway.base.removesuffix("/v2/router")
        key = targets.BENCH_KEY
        bomb = {"id": "bomb", "template": "{{input}}" * 3_000}
        httpx.post(
            f"{base}/v2/prompts", json=bomb, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ).raise_for_status()
        for attack in attacks(base, key):
            if only and attack.name not in only:
                continue
            rows.append(run_attack(attack, base, gateway.proc.pid))
            print(f"  abuse {_line(rows[-1])}", flush=True)
        with procs.RssSampler(gateway.proc.pid, every_s=0.01) as rss, HealthPoller(base) as health:
            statuses = slowloris(int(base.rsplit(":", 1)[1]), key, 64)
        rows.append(
            _row(
                "slowloris",
                "64 connections stall mid-body (idle timeout 2 s)",
                frozenset({408}),
                statuses,
                rss,
                health,
            )
        )
        print(f"  abuse {_line(rows[-1])}", flush=True)
        hits = httpx.get(f"http://127.0.0.1:{port}/hits", timeout=10).json()["internal_hits"]
        for row in rows:
            row["internal_hits_total"] = hits
    finally:
        if gateway is not None:
            gateway.stop()
        hostile.stop()
    del internal
    return rows


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['attack']:14s} answers={row['statuses']} ok={row['as_expected']} "
        f"rss+={row['rss_growth_mb']} MB "
        f"worst /health={row['worst_health_ms']} ms"
    )


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The abuse table for docs/benchmarks.md."""
    hits = rows[0].get("internal_hits_total", "?") if rows else "?"
    lines = [
        "",
        "### Abuse (one gateway worker, one attack at a time)",
        "",
        "| attack | requests | answers | as expected | peak RSS growth MB | worst /health ms |",
        "|---|---:|---|:--:|---:|---:|",
    ]
    for r in rows:
        answers = ", ".join(f"{k}×{v}" for k, v in r["statuses"].items())
        lines.append(
            f"| {r['attack']}: {r['title']} | {r['requests']} | {answers} | "
            f"{'yes' if r['as_expected'] else '**no**'} | {r['rss_growth_mb']} | "
            f"{r['worst_health_ms']} |"
        )
    lines += ["", f"Requests the internal server behind the hostile provider received: {hits}."]
    return lines
