"""``make bench``: run the scenarios against each target and write the results.

    python -m bench.run                 # full run (~10 min): JSON + docs/benchmarks.md + PNG
    python -m bench.run --quick         # ~2 min, writes to bench/results/ only
    python -m bench.run --smoke --out /tmp/x   # seconds; what the test suite runs
    python -m bench.run --quick --scenarios small,large --profile

Layout on 2+ cores: the gateway on CPU 1, upstream and load generator on CPU 0, so the
gateway's own core is what saturates. Every process started here is stopped by its PID, also
on Ctrl-C or SIGTERM; every load is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import abuse, load, procs, profile, report, targets
from .measure import measure
from .scenarios import BY_NAME, Scenario, Settings, write_body

ROOT = Path(__file__).resolve().parent.parent
# --rate-limit: every request passes the in-process limiter (or Redis) and is never refused.
RATE_LIMIT = {"key_limits": {"rpm": 10**9, "images_per_min": 10**9}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="short runs (about 2 minutes)")
    mode.add_argument("--smoke", action="store_true", help="seconds; Python load; no docs")
    p.add_argument(
        "--scenarios",
        help=f"comma list of {','.join(BY_NAME)},abuse (default: "
        "all; abuse only on a full run unless named)",
    )
    p.add_argument(
        "--targets",
        help="comma list of direct,imagegate,litellm "
        "(default: direct,imagegate, plus litellm when installed)",
    )
    p.add_argument("--duration", type=float, help="seconds per measured run")
    p.add_argument("--warmup", type=float, help="seconds of discarded warm-up per scenario")
    p.add_argument("--concurrency", help="comma list of closed-loop connections, e.g. 1,32")
    p.add_argument("--soak-requests", type=int, help="in-flight requests in the soak")
    p.add_argument("--workers", type=int, default=1, help="imagegate worker processes")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the imagegate bench config, e.g. traces=false (repeatable)",
    )
    p.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for imagegate, e.g. MALLOC_ARENA_MAX=2 (repeatable)",
    )
    p.add_argument(
        "--rate-limit",
        action="store_true",
        help="give the bench key a rate limit it never reaches (measures the limiter's cost)",
    )
    p.add_argument("--gateway-cpus", help="taskset list for the gateway (default 1)")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--python-load", action="store_true", help="use the Python load generator")
    p.add_argument("--litellm", help="path of the litellm CLI to compare with")
    p.add_argument(
        "--profile",
        action="store_true",
        help="also sample imagegate with py-spy on each scenario (loaded)",
    )
    p.add_argument("--out", type=Path, help="results directory (default bench/results/<time>)")
    p.add_argument(
        "--docs",
        type=Path,
        help="markdown file to update (default docs/benchmarks.md on a full run)",
    )
    p.add_argument("--no-docs", action="store_true", help="do not touch docs/")
    p.add_argument(
        "--keep-work",
        action="store_true",
        help="keep the gateway's blobs, trace DB and uploads after each scenario",
    )
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> tuple[str, Settings]:
    preset = "smoke" if args.smoke else "quick" if args.quick else "full"
    conc = tuple(int(c) for c in args.concurrency.split(",")) if args.concurrency else None
    settings = Settings.preset(preset).with_(
        duration_s=args.duration,
        warmup_s=args.warmup,
        concurrency=conc,
        soak_requests=args.soak_requests,
        prefer_wrk=False if args.python_load else None,
    )
    return preset, settings


def environment(preset: str, pinning: str, settings: Settings) -> dict[str, Any]:
    def cmd(*argv: str, any_status: bool = False) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=ROOT)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        text = (done.stdout or done.stderr).strip()
        return text.splitlines()[0] if text and (any_status or done.returncode == 0) else ""

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    use_wrk = settings.prefer_wrk and load.have_wrk()
    wrk = cmd("wrk", "-v", any_status=True).split(" [")[0] or "wrk"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "preset": preset,
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": cmd("git", "rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(cmd("git", "status", "--porcelain", "--untracked-files=no")),
        "loadgen": wrk if use_wrk else "python (aiohttp)",
        "pinning": pinning,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "settings": {k: v for k, v in vars(settings).items()},
    }


def raise_fd_limit() -> None:
    """The soak holds thousands of sockets in the gateway, the upstream and here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop processes


def start_target(name: str, tag: str, ctx: dict[str, Any]) -> targets.Endpoint:
    upstream_base = f"http://127.0.0.1:{ctx['upstream_port']}/v1"
    workdir = ctx["out"] / "work" / f"{name}-{tag}"
    if name == "direct":
        return targets.Endpoint("direct", upstream_base, None, None)
    if name == "imagegate":
        return targets.start_imagegate(
            workdir,
            upstream_base,
            cpus=ctx["gateway_cpus"],
            workers=ctx["workers"],
            overrides=ctx["overrides"],
            env=ctx["gateway_env"],
            workspace_limits=ctx["workspace_limits"],
        )
    return targets.start_litellm(workdir, ctx["litellm"], upstream_base, cpus=ctx["gateway_cpus"])


def run_target(name: str, scenario: Scenario, ctx: dict[str, Any], results: dict[str, Any]) -> None:
    """Measure ``scenario`` on target ``name`` (a fresh process unless the preset shares one)."""
    settings: Settings = ctx["settings"]
    out: Path = ctx["out"]
    shared: dict[str, targets.Endpoint] = ctx["shared"]
    tag = scenario.name if settings.fresh_gateway else "all"
    endpoint = shared.get(name) if not settings.fresh_gateway else None
    if endpoint is None:
        endpoint = start_target(name, tag, ctx)
        if not settings.fresh_gateway:
            shared[name] = endpoint
    if "config_keys_missing" in endpoint.info:
        results["config_keys_missing"] = endpoint.info["config_keys_missing"]
    try:
        body, ctype = write_body(scenario, settings, out)
        rows = measure(
            scenario,
            endpoint,
            settings,
            body,
            ctype,
            upstream=ctx["upstream"],
            loadgen_cpus=ctx["side_cpus"],
        )
        for row in rows:
            print(f"  {_line(row)}", flush=True)
        results["rows"].extend(rows)
        if (
            ctx["profile"]
            and name == "imagegate"
            and endpoint.proc is not None
            and scenario.kind == "throughput"
        ):
            spec = load.Load(
                url=endpoint.url(scenario.operation),
                body_path=body,
                content_type=ctype,
                auth=endpoint.auth,
                concurrency=max(settings.concurrency),
                duration_s=max(3.0, settings.duration_s),
                cpus=ctx["side_cpus"],
            )
            summary = profile.record(
                endpoint.proc.pid, spec, out, scenario.name, prefer_wrk=settings.prefer_wrk
            )
            print(f"  profile: {summary}", flush=True)
    finally:
        if settings.fresh_gateway:
            endpoint.stop()
    if name == "imagegate" and settings.fresh_gateway:
        finish_workdir(out / "work" / f"imagegate-{tag}", tag, ctx, results)


def finish_workdir(workdir: Path, tag: str, ctx: dict[str, Any], results: dict[str, Any]) -> None:
    """Record what a stopped gateway wrote, then drop the bulk (thousands of 1 MB blobs)."""
    results["observed"][tag] = targets.observed_features(workdir)
    if not ctx["keep_work"]:  # keep the log and the config only
        for sub in ("blobs", "data", "uploads"):
            shutil.rmtree(workdir / sub, ignore_errors=True)


def _line(row: dict[str, Any]) -> str:
    if "failed" in row:
        return f"{row['scenario']:7s} {row['target']:9s} FAILED: {row['failed']}"
    cpu = row.get("gw_cpu_ms_per_req")
    return (
        f"{row['scenario']:7s} {row['target']:9s} c={row['conc']:<5d} rps={row['rps']:9.1f} "
        f"p50={row['p50_ms']:9.3f} p99={row['p99_ms']:9.3f} errors="
        f"{row['errors'] + row['non2xx']} cpu/req={cpu if cpu is not None else '-'} "
        f"loop={row.get('gw_loop_cpu_ms_per_req', '-')} "
        f"sys={row.get('gw_sys_cpu_ms_per_req', '-')} "
        f"rss_peak={row.get('rss_peak_mb', '-')}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset, settings = settings_from(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out: Path = args.out or ROOT / "bench" / "results" / f"{stamp}-{preset}"
    out.mkdir(parents=True, exist_ok=True)
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    gateway_cpus = (args.gateway_cpus or "1") if pin else None
    side_cpus = "0" if pin else None
    pinning = f"gateway cpu {gateway_cpus}, upstream+load cpu {side_cpus}" if pin else "none"
    names = args.scenarios.split(",") if args.scenarios else [*BY_NAME, "abuse"]
    run_abuse = "abuse" in names and (preset == "full" or bool(args.scenarios))
    chosen = [BY_NAME[s] for s in names if s != "abuse"]
    litellm = targets.find_litellm(args.litellm)
    with_litellm = litellm is not None and preset != "smoke"  # smoke stays seconds-long
    wanted = (
        args.targets.split(",")
        if args.targets
        else ["direct", "imagegate", *(["litellm"] if with_litellm else [])]
    )
    if "litellm" in wanted and not litellm:
        print("litellm not found (--litellm PATH or LITELLM_BIN); skipping it", file=sys.stderr)
        wanted.remove("litellm")
    raise_fd_limit()
    signal.signal(signal.SIGTERM, on_sigterm)
    results: dict[str, Any] = {
        "env": environment(preset, pinning, settings),
        "rows": [],
        "observed": {},
        "scenario_titles": {s.name: s.title for s in chosen},
        "floors": {s.name: s.floor for s in chosen},
        "config_keys_missing": [],
        "overrides": args.set,
        "workers": args.workers,
        "gateway_env": args.gateway_env,
        "rate_limit": args.rate_limit,
    }
    print(f"bench: {preset} preset, results in {out}", flush=True)
    shared: dict[str, targets.Endpoint] = {}
    upstream = procs.start(
        "upstream",
        [sys.executable, "-m", "bench.upstream", "--port", "0"],
        log_path=out / "upstream.log",
        cpus=side_cpus,
        cwd=ROOT,
    )
    try:
        port = int(procs.wait_ready_line(upstream, "READY "))
        ctx = {
            "settings": settings,
            "out": out,
            "upstream": upstream,
            "upstream_port": port,
            "gateway_cpus": gateway_cpus,
            "side_cpus": side_cpus,
            "workers": args.workers,
            "litellm": litellm,
            "profile": args.profile,
            "shared": shared,
            "keep_work": args.keep_work,
            "overrides": args.set,
            "gateway_env": dict(item.split("=", 1) for item in args.gateway_env),
            "workspace_limits": RATE_LIMIT if args.rate_limit else None,
        }
        for scenario in chosen:
            print(f"== {scenario.name}: {scenario.title}", flush=True)
            for name in scenario.targets:
                if name in wanted:
                    run_target(name, scenario, ctx, results)
        if run_abuse and "imagegate" in wanted:
            print("== abuse: hostile requests, one attack at a time", flush=True)
            results["abuse"] = abuse.run(out, gateway_cpus=gateway_cpus, side_cpus=side_cpus)
    finally:
        for endpoint in shared.values():
            endpoint.stop()
        upstream.stop()
    if "imagegate" in shared:
        finish_workdir(out / "work" / "imagegate-all", "all", ctx, results)
    results["env"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report.add_floors(results["rows"], results["floors"])
    results["goals"] = report.check_goals(results["rows"])
    (out / "results.json").write_text(json.dumps(results, indent=1))
    chart_path = out / "benchmarks.png"
    report.chart(results, chart_path)
    publish(results, out, chart_path, args, preset)
    return 0


def publish(
    results: dict[str, Any], out: Path, chart_path: Path, args: argparse.Namespace, preset: str
) -> None:
    """results.json + chart + summary in ``out``; docs/benchmarks.* on a full run (or --docs)."""
    docs = (
        None
        if args.no_docs
        else args.docs or (ROOT / "docs" / "benchmarks.md" if preset == "full" else None)
    )
    if docs is not None:
        docs.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(chart_path, docs.with_suffix(".png"))
        docs.with_suffix(".json").write_text(json.dumps(results, indent=1))
        report.write_docs(docs, report.markdown(results, docs.with_suffix(".png").name))
    (out / "summary.md").write_text(report.markdown(results, chart_path.name) + "\n")
    for goal in results["goals"]:
        print(f"goal: {goal['goal']}: {goal['value']} (≤ {goal['limit']:g}) met={goal['met']}")
    print(f"bench: wrote {out / 'results.json'}" + (f" and {docs}" if docs else ""))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every process was already stopped by the finally blocks
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
