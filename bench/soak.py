"""The big soak: thousands of requests in flight together on one gateway process.

    python -m bench.soak                        # 10,000 requests, upstream takes 10 s
    python -m bench.soak --requests 2000 --latency-ms 3000 --workers 1

One fake upstream (``bench.upstream``, model ``slow-<ms>``), one ``imagegate serve`` with the
bench's all-features-on config (``bench.targets``) and an unlimited provider pool, and the
Python load generator (``bench.load``) sending exactly ``--requests`` requests, each on its
own connection, started over ``--ramp-s`` so all are in flight together. Peak RSS is the
gateway's process tree, sampled every 50 ms. Each in-flight request holds two sockets in the
gateway (client, upstream) and one in each of the other two processes, so the file
descriptor limit is raised here, in-process (``resource.setrlimit``), before anything starts:
the children inherit it. The run is bounded (``--time-limit-s``); every process started is
stopped by its own id. Prints one JSON document (also written to ``--out``); exits 1 when a
request failed or the peak RSS passed ``--max-rss-mb``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import load, procs, targets
from .scenarios import generation

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def raise_fd_limit(needed: int) -> tuple[int, int]:
    """Soft (and, when allowed, hard) ``RLIMIT_NOFILE`` up to ``needed``; the new limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:  # root (CAP_SYS_RESOURCE) may raise the hard limit up to fs.nr_open
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed, needed
        except (ValueError, OSError):
            needed = hard
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=10_000, help="requests, all in flight")
    p.add_argument("--latency-ms", type=int, default=10_000, help="upstream time per call")
    p.add_argument("--ramp-s", type=float, default=5.0, help="start the requests over this")
    p.add_argument("--workers", type=int, default=1, help="imagegate worker processes")
    p.add_argument("--max-rss-mb", type=float, default=600.0, help="the goal for peak RSS")
    p.add_argument("--time-limit-s", type=int, default=600, help="stop everything after this")
    p.add_argument("--out", type=Path, help="results directory (default bench/results/<time>-soak)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "bench" / "results" / f"{stamp}-soak"
    out.mkdir(parents=True, exist_ok=True)
    soft, hard = raise_fd_limit(3 * args.requests + 4096)
    signal.signal(signal.SIGALRM, lambda *_: _stop("time limit reached"))
    signal.signal(signal.SIGTERM, lambda *_: _stop("SIGTERM"))
    signal.alarm(args.time_limit_s)
    work = Path(tempfile.mkdtemp(prefix="imagegate-soak-"))
    started: list[procs.Proc] = []
    try:
        argv_up = [sys.executable, "-m", "bench.upstream", "--port", "0"]
        upstream = procs.start("upstream", argv_up, log_path=out / "upstream.log", cwd=ROOT)
        started.append(upstream)
        port = procs.wait_ready_line(upstream, "READY ")
        endpoint = targets.start_imagegate(
            work / "gateway",
            f"http://127.0.0.1:{port}/v1",
            cpus=None,
            workers=args.workers,
            overrides=["providers.openai.pool_size=0"],  # 0: as many connections as calls
        )
        assert endpoint.proc is not None
        started.append(endpoint.proc)
        body = work / "body.json"
        body.write_bytes(generation(f"openai/slow-{args.latency_ms}", "256x256", "b64_json"))
        spec = load.Load(
            url=endpoint.url("generations"),
            body_path=body,
            content_type="application/json",
            auth=endpoint.auth,
            concurrency=args.requests,
            duration_s=0,
            count=args.requests,
            ramp_s=args.ramp_s,
            timeout_s=args.latency_ms / 1000 + 120,
        )
        pid = endpoint.proc.pid
        rss_idle, cpu0 = procs.rss_bytes(pid), procs.cpu_seconds(pid)
        with procs.RssSampler(pid) as sampler:
            result = load.run_python(spec)
        cpu1 = procs.settle_cpu(pid)
        stats = _upstream_stats(port)
        report = {
            "when": stamp,
            "requests": args.requests,
            "latency_ms": args.latency_ms,
            "ramp_s": args.ramp_s,
            "workers": args.workers,
            "fd_limit": [soft, hard],
            "ok": result.requests,
            "non2xx": result.non2xx,
            "errors": result.errors,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "max_ms": result.max_ms,
            "wall_s": result.duration_s,
            "upstream_max_in_flight": stats.get("max_in_flight"),
            "rss_idle_mb": round(rss_idle / MB, 1),
            "rss_peak_mb": round(sampler.peak / MB, 1),
            "rss_per_request_kb": round((sampler.peak - rss_idle) / 1024 / args.requests, 1),
            "gw_cpu_s": round(cpu1 - cpu0, 2),
            "gw_cpu_ms_per_req": round((cpu1 - cpu0) * 1000 / max(result.requests, 1), 3),
            "max_rss_mb": args.max_rss_mb,
            "cpus": os.cpu_count(),
        }
    finally:
        signal.alarm(0)
        for proc in reversed(started):
            proc.stop()
    passed = (
        report["ok"] == args.requests
        and not report["errors"]
        and not report["non2xx"]
        and report["rss_peak_mb"] <= args.max_rss_mb
    )
    report["passed"] = passed
    text = json.dumps(report, indent=2)
    (out / "soak.json").write_text(text + "\n")
    print(text)
    return 0 if passed else 1


def _upstream_stats(port: str) -> dict[str, Any]:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
            return doc
    except (OSError, ValueError):
        return {}


def _stop(why: str) -> None:
    print(f"bench.soak: {why}, stopping", file=sys.stderr)
    raise SystemExit(2)  # unwinds through the finally that stops every process


if __name__ == "__main__":
    sys.exit(main())
