"""Closed-loop load: wrk with ``post.lua`` when installed, else a small aiohttp client.

wrk is the default because it is written in C and costs the shared core almost nothing; the
Python generator keeps the harness usable (and the smoke test runnable) without it, and it is
what the soak uses, because the soak needs an exact request count rather than a duration.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

from .procs import pin_prefix

LUA = Path(__file__).with_name("post.lua")


@dataclass
class Load:
    """One load run's request: what to send, where, how hard and for how long."""

    url: str
    body_path: Path
    content_type: str
    auth: str | None = None
    concurrency: int = 1
    duration_s: float = 10.0
    count: int | None = None  # Python generator only: exactly this many requests, then stop
    ramp_s: float = 0.0  # Python generator only: spread the workers' first requests over this
    timeout_s: float = 60.0
    cpus: str | None = None


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non2xx: int
    errors: int
    bytes: int
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["rps"] = round(self.rps, 1)
        return out


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run(load: Load, *, prefer_wrk: bool = True) -> LoadResult:
    if prefer_wrk and load.count is None and have_wrk():
        return run_wrk(load)
    return run_python(load)


def run_wrk(load: Load) -> LoadResult:
    duration = max(1, round(load.duration_s))
    argv = [
        *pin_prefix(load.cpus),
        "wrk",
        "-t1",
        f"-c{load.concurrency}",
        f"-d{duration}s",
        f"--timeout={max(1, round(load.timeout_s))}s",
        "-s",
        str(LUA),
        load.url,
    ]
    env = {
        **os.environ,
        "BENCH_BODY": str(load.body_path),
        "BENCH_CTYPE": load.content_type,
        "BENCH_AUTH": load.auth or "",
    }
    done = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + load.timeout_s + 30,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            doc = json.loads(line[len("BENCHJSON ") :])
            return LoadResult(tool="wrk", **doc)
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}): {done.stderr[-2000:]}")


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    index = min(len(sorted_ms) - 1, max(0, round(q / 100 * len(sorted_ms)) - 1))
    return sorted_ms[index]


async def _python_load(load: Load) -> LoadResult:
    body = load.body_path.read_bytes()
    headers = {"Content-Type": load.content_type}
    if load.auth:
        headers["Authorization"] = load.auth
    latencies: list[float] = []
    counters = {"non2xx": 0, "errors": 0, "bytes": 0, "issued": 0}
    total = load.count
    started = time.perf_counter()
    stop_at = started + load.duration_s
    timeout = aiohttp.ClientTimeout(total=load.timeout_s)

    async def worker(session: aiohttp.ClientSession, index: int) -> None:
        if load.ramp_s > 0:
            await asyncio.sleep(load.ramp_s * index / load.concurrency)
        while True:
            if total is not None:
                if counters["issued"] >= total:
                    return
            elif time.perf_counter() >= stop_at:
                return
            counters["issued"] += 1
            t0 = time.perf_counter()
            try:
                async with session.post(load.url, data=body, headers=headers) as resp:
                    data = await resp.read()
                    counters["bytes"] += len(data)
                    if resp.status >= 400:  # as wrk counts them
                        counters["non2xx"] += 1
            except (aiohttp.ClientError, TimeoutError, OSError):
                counters["errors"] += 1
                continue
            latencies.append((time.perf_counter() - t0) * 1000)

    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session, i) for i in range(load.concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        duration_s=round(elapsed, 4),
        p50_ms=round(percentile(latencies, 50), 4),
        p90_ms=round(percentile(latencies, 90), 4),
        p99_ms=round(percentile(latencies, 99), 4),
        max_ms=round(latencies[-1], 4) if latencies else 0.0,
        mean_ms=round(sum(latencies) / len(latencies), 4) if latencies else 0.0,
        non2xx=counters["non2xx"],
        errors=counters["errors"],
        bytes=counters["bytes"],
        tool="python",
    )


def parse_cpus(spec: str) -> set[int]:
    """``"0"``, ``"0,2"`` or ``"0-3"`` → a CPU set (taskset's list syntax)."""
    out: set[int] = set()
    for item in spec.split(","):
        low, _, high = item.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def run_python(load: Load) -> LoadResult:
    """The aiohttp generator in this process (pinning applies to the whole bench process)."""
    if load.cpus and hasattr(os, "sched_setaffinity"):
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, parse_cpus(load.cpus))
        try:
            return asyncio.run(_python_load(load))
        finally:
            os.sched_setaffinity(0, before)
    return asyncio.run(_python_load(load))
