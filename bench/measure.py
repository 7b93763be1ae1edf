"""Run one scenario against one running target and turn the load result into table rows.

Gateway CPU per request is the CPU its process tree used between just before the load and
the moment it goes quiet after it (deferred trace or blob writes count), divided by the
requests completed. RSS is sampled every 50 ms during the load.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from . import load, procs
from .scenarios import Scenario, Settings
from .targets import Endpoint

MB = 1024 * 1024


def check(
    endpoint: Endpoint, scenario: Scenario, body: bytes, content_type: str
) -> tuple[str | None, dict[str, str]]:
    """One request by hand: (None, headers) when it answers 200 with an image, else why not."""
    headers = {"Content-Type": content_type}
    if endpoint.auth:
        headers["Authorization"] = endpoint.auth
    request = urllib.request.Request(
        endpoint.url(scenario.operation), data=body, headers=headers, method="POST"
    )
    timeout = 120 if scenario.kind == "soak" else 60
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
            answer_headers = {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read()[:300]!r}", {}
    except OSError as exc:
        return f"request failed: {exc}", {}
    try:
        data = orjson.loads(raw)["data"][0]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return f"not an images response: {raw[:300]!r}", answer_headers
    if not (data.get("b64_json") or data.get("url")):
        return f"no image in the answer: {raw[:300]!r}", answer_headers
    return None, answer_headers


def upstream_stats(upstream: procs.Proc) -> dict[str, Any]:
    """The fake upstream's counters (its port is in its READY line)."""
    port = procs.wait_ready_line(upstream, "READY ", timeout_s=1)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as resp:
            doc: dict[str, Any] = orjson.loads(resp.read())
            return doc
    except (OSError, orjson.JSONDecodeError):
        return {}


def _row(scenario: Scenario, endpoint: Endpoint, concurrency: int) -> dict[str, Any]:
    return {"scenario": scenario.name, "target": endpoint.name, "conc": concurrency}


def measure(
    scenario: Scenario,
    endpoint: Endpoint,
    settings: Settings,
    body_path: Path,
    content_type: str,
    *,
    upstream: procs.Proc,
    loadgen_cpus: str | None,
) -> list[dict[str, Any]]:
    """Rows for every concurrency level of ``scenario`` on ``endpoint``."""
    rss_before_check = procs.rss_bytes(endpoint.proc.pid) if endpoint.proc else 0
    body = body_path.read_bytes()
    problem, _ = check(endpoint, scenario, body, content_type)
    if problem is not None:
        return [{**_row(scenario, endpoint, 0), "failed": problem}]
    notes: dict[str, Any] = {}
    if scenario.name == "cache" and endpoint.name == "imagegate":
        _, again = check(endpoint, scenario, body, content_type)  # must now be a hit
        notes["x_orq_cache"] = again.get("x-orq-cache")

    def run_load(concurrency: int, duration_s: float, count: int | None = None) -> dict[str, Any]:
        soak = count is not None
        spec = load.Load(
            url=endpoint.url(scenario.operation),
            body_path=body_path,
            content_type=content_type,
            auth=endpoint.auth,
            concurrency=concurrency,
            duration_s=duration_s,
            count=count,
            cpus=loadgen_cpus,
            timeout_s=settings.soak_latency_ms / 1000 + 60 if soak else 60,
            ramp_s=settings.soak_ramp_s if soak else 0.0,
        )
        return _measured(spec, endpoint, upstream, settings)

    rows: list[dict[str, Any]] = []
    if scenario.kind == "soak":
        n = settings.soak_requests
        result = run_load(n, 0, count=n)
        result["rss_growth_mb"] = round(result["rss_peak_mb"] - rss_before_check / MB, 1)
        result["upstream_max_in_flight"] = upstream_stats(upstream).get("max_in_flight")
        rows.append(
            {
                **_row(scenario, endpoint, n),
                **result,
                "all_ok": result["requests"] == n and not result["errors"] and not result["non2xx"],
            }
        )
        return rows
    if scenario.kind == "memory":
        conc = settings.big_edit_concurrency
        result = run_load(conc, settings.big_edit_duration_s)
        # growth against the idle gateway before the first big upload (the check included)
        result["rss_growth_mb"] = round(result["rss_peak_mb"] - rss_before_check / MB, 1)
        rows.append(_no_requests({**_row(scenario, endpoint, conc), **result}))
        return rows
    if settings.warmup_s > 0:
        run_load(max(settings.concurrency), settings.warmup_s)
    for i, conc in enumerate(settings.concurrency):
        if i:
            time.sleep(0.5)  # let the previous level's connections close
        row = {**_row(scenario, endpoint, conc), **run_load(conc, settings.duration_s), **notes}
        rows.append(_no_requests(row))
    return rows


def _no_requests(row: dict[str, Any]) -> dict[str, Any]:
    """A window in which nothing completed is a failure, not a zero."""
    if row.get("requests", 0) == 0:
        row["failed"] = "no request completed in the measured window"
    return row


def _measured(
    spec: load.Load, endpoint: Endpoint, upstream: procs.Proc, settings: Settings
) -> dict[str, Any]:
    pid = endpoint.proc.pid if endpoint.proc else None
    cpu0 = procs.cpu_seconds(pid) if pid else 0.0
    sys0 = procs.sys_seconds(pid) if pid else 0.0
    faults0 = procs.minor_faults(pid) if pid else 0
    main0 = procs.main_thread_seconds(pid) if pid else 0.0
    up0 = procs.cpu_seconds(upstream.pid)
    sampler = procs.RssSampler(pid) if pid else None
    if sampler is not None:
        sampler.__enter__()
    try:
        result = load.run(spec, prefer_wrk=settings.prefer_wrk)
    finally:
        if sampler is not None:
            sampler.__exit__(None, None, None)
    cpu1 = procs.settle_cpu(pid, quiet_s=settings.settle_s) if pid else 0.0
    up1 = procs.cpu_seconds(upstream.pid)
    n = max(result.requests, 1)
    out: dict[str, Any] = result.as_dict()
    out["loadavg_1m"] = round(os.getloadavg()[0], 2)  # how busy the shared machine was
    out["upstream_cpu_ms_per_req"] = round((up1 - up0) * 1000 / n, 4)
    if pid and sampler is not None:
        out["gw_cpu_ms_per_req"] = round((cpu1 - cpu0) * 1000 / n, 4)
        out["gw_cpu_util"] = round((cpu1 - cpu0) / max(result.duration_s, 1e-9), 3)
        out["gw_sys_cpu_ms_per_req"] = round((procs.sys_seconds(pid) - sys0) * 1000 / n, 4)
        out["gw_minflt_per_req"] = round((procs.minor_faults(pid) - faults0) / n, 1)
        main_s = procs.main_thread_seconds(pid) - main0
        out["gw_loop_cpu_ms_per_req"] = round(main_s * 1000 / n, 4)  # event-loop thread(s) only
        out["rss_start_mb"] = round(sampler.start_bytes / MB, 1)
        out["rss_peak_mb"] = round(sampler.peak / MB, 1)
    return out
