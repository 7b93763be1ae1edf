"""Load for the job queue: many queued jobs against a slow upstream, memory watched.

    python -m bench.jobs_load --jobs 1000 --upstream-ms 2000 --concurrency 50 [--database-url …]

One ``imagegate serve`` (placeholder-free: the benchmark upstream, ``bench/upstream.py``,
whose model ``slow-<ms>`` holds each answer that long) gets ``--jobs`` submissions at once;
the script then waits — bounded by ``--deadline-s`` — until every job has finished, and
prints one JSON line: how many succeeded, the most jobs seen running at once (sampled from
``GET /v2/jobs?status=running``), the upstream's own highest in-flight count, and the
gateway's RSS at start, peak and end. Nothing is asserted about time; it is a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import yaml

from .procs import RssSampler, free_port, rss_bytes, start, wait_http, wait_ready_line

MB = 1024 * 1024


async def _count(client: httpx.AsyncClient, status: str, cap: int) -> int:
    total, after = 0, None
    while True:
        params: dict[str, Any] = {"status": status, "limit": 100}
        if after:
            params["after"] = after
        page = (await client.get("/v2/jobs", params=params)).json()
        total += len(page["data"])
        after = page["next_cursor"]
        if not after or total >= cap:
            return total


async def drive(url: str, jobs: int, upstream_ms: int, deadline_s: float) -> dict[str, Any]:
    body = {
        "model": f"openai/slow-{upstream_ms}",
        "prompt": "load",
        "size": "256x256",
        "response_format": "b64_json",
    }
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        sem = asyncio.Semaphore(32)

        async def one() -> int:
            async with sem:
                r = await client.post("/v2/jobs/images/generations", json=body)
                return r.status_code

        started = time.monotonic()
        codes = await asyncio.gather(*(one() for _ in range(jobs)))
        submitted_s = time.monotonic() - started
        most_running = 0
        deadline = started + deadline_s
        while time.monotonic() < deadline:
            most_running = max(most_running, await _count(client, "running", 1000))
            done = sum(
                [await _count(client, s, jobs) for s in ("succeeded", "failed", "cancelled")]
            )
            if done >= jobs:
                break
            await asyncio.sleep(0.5)  # a sampling interval
        succeeded = await _count(client, "succeeded", jobs)
        return {
            "submitted": codes.count(202),
            "refused": len(codes) - codes.count(202),
            "submit_s": round(submitted_s, 1),
            "succeeded": succeeded,
            "all_s": round(time.monotonic() - started, 1),
            "most_running_seen": most_running,
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--upstream-ms", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=50, help="jobs.max_running_per_workspace")
    p.add_argument("--workers", type=int, default=64, help="jobs.workers of the one process")
    p.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    p.add_argument("--deadline-s", type=float, default=600.0)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ig-jobs-load-"))
    upstream = start(
        "upstream",
        [sys.executable, "-m", "bench.upstream", "--port", "0"],
        log_path=tmp / "upstream.log",
    )
    gateway = None
    try:
        up_port = int(wait_ready_line(upstream, "READY"))
        port = free_port()
        doc: dict[str, Any] = {
            "data_dir": str(tmp / "data"),
            "access_log": False,
            "traces": True,
            "providers": {
                "openai": {"api_key": "sk-bench", "base_url": f"http://127.0.0.1:{up_port}/v1"}
            },
            "jobs": {
                "workers": args.workers,
                "max_running_per_workspace": args.concurrency,
                "max_queued_per_workspace": args.jobs + 10,
                "poll_interval_s": 0.2,
            },
        }
        if args.database_url:
            doc["database_url"] = args.database_url
        (tmp / "imagegate.yaml").write_text(yaml.safe_dump(doc))
        exe = str(Path(sys.executable).with_name("imagegate"))
        gateway = start(
            "gateway",
            [exe, "serve", "--config", str(tmp / "imagegate.yaml"), "--port", str(port)],
            log_path=tmp / "gateway.log",
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(gateway, url + "/health")
        rss_start = rss_bytes(gateway.pid)
        with RssSampler(gateway.pid, every_s=0.2) as rss:
            out = asyncio.run(drive(url, args.jobs, args.upstream_ms, args.deadline_s))
        with urllib.request.urlopen(f"http://127.0.0.1:{up_port}/stats", timeout=5) as r:
            stats = json.loads(r.read())
        out.update(
            jobs=args.jobs,
            upstream_ms=args.upstream_ms,
            concurrency=args.concurrency,
            upstream_requests=stats.get("requests"),
            upstream_max_in_flight=stats.get("max_in_flight"),
            rss_start_mb=round(rss_start / MB, 1),
            rss_peak_mb=round(rss.peak / MB, 1),
            rss_end_mb=round(rss_bytes(gateway.pid) / MB, 1),
        )
        print(json.dumps(out))
        return 0 if out["succeeded"] == args.jobs else 1
    finally:
        if gateway is not None:
            gateway.stop()
        upstream.stop()


if __name__ == "__main__":
    sys.exit(main())
