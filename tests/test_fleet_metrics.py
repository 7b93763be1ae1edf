"""``/metrics`` under ``imagegate serve --workers 2``: one answer for the whole process.

Requests and ``/metrics`` reads each open a fresh connection, so the kernel hands them to
either worker; every read must still count every request (each worker alone would show only
its share). A worker's own counts are fresh, the others' at most a second old. Also: the
latency and image-size histograms, counters past a million printed in full, and the sum
keeping the counts of a worker that is gone but not its gauges.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from fleetkit import Replica, write_config
from live import GEN, live_gateway
from waiting import wait_until

from imagegate.telemetry.metrics import Metrics, render
from imagegate.telemetry.trace import TraceRecord
from imagegate.telemetry.workers import WorkerMetrics

BODY = {"model": "placeholder/m", "prompt": "a fox", "size": "64x64", "response_format": "b64_json"}


def sample(text: str, line_start: str) -> float:
    found = re.search(rf"^{re.escape(line_start)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found is not None, f"{line_start} not in /metrics"
    return float(found.group(1))


def test_metrics_sum_every_worker(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "imagegate.yaml",
        {
            "data_dir": str(tmp_path / "data"),
            "storage": {"path": str(tmp_path / "blobs")},
        },
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    replica = Replica(config, tmp_path, "--workers", "2", env={"TMPDIR": str(scratch)})
    try:
        replica.wait_up()

        def metrics() -> str:
            return httpx.get(f"{replica.url}/metrics", timeout=30).text

        wait_until(lambda: sample(metrics(), "imagegate_metrics_workers") == 2, "both workers")
        for i in range(30):
            answer = httpx.post(
                f"{replica.url}{GEN}", json={**BODY, "prompt": f"fox {i}"}, timeout=60
            )
            assert answer.status_code == 200, answer.text
        expected = (
            'imagegate_requests_total{operation="generations",status="200"}',
            'imagegate_request_latency_seconds_count{operation="generations"}',
            'imagegate_image_pixels_bucket{operation="generations",le="65536"}',
        )
        counts = lambda: [sample(metrics(), name) for name in expected]  # noqa: E731
        # the other worker's file is up to a second old (workers.py): wait for it, then every
        # read, whichever worker answers it, counts all 30
        wait_until(lambda: counts() == [30, 30, 30], "every worker's counts in one answer")
        for _ in range(10):
            assert counts() == [30, 30, 30]
        replica.signal(signal.SIGTERM)
        assert replica.proc.wait(timeout=120) == 0, replica.log.read_text()
    finally:
        replica.stop()
    assert list(scratch.glob("imagegate-metrics-*")) == []  # the parent removed its directory


def test_histograms_of_latency_and_image_size(make_config: Any) -> None:
    with live_gateway(make_config()) as gw:
        for size in ("64x64", "64x64", "1024x1024"):
            answer = httpx.post(f"{gw.url}{GEN}", json={**BODY, "size": size}, timeout=60)
            assert answer.status_code == 200, answer.text
        text = httpx.get(f"{gw.url}/metrics", timeout=30).text
    lines = set(text.splitlines())
    assert "# TYPE imagegate_request_latency_seconds histogram" in lines
    assert 'imagegate_request_latency_seconds_bucket{operation="generations",le="+Inf"} 3' in lines
    assert 'imagegate_image_pixels_bucket{operation="generations",le="65536"} 2' in lines
    assert 'imagegate_image_pixels_bucket{operation="generations",le="1048576"} 3' in lines
    assert 'imagegate_image_pixels_sum{operation="generations"} 1056768' in lines  # 2x4096 + 1024²
    # the names that were there before stay
    assert any(line.startswith("imagegate_request_duration_seconds_sum{") for line in lines)


def test_a_counter_past_a_million_is_printed_in_full() -> None:
    metrics = Metrics()
    trace = TraceRecord(id="t", operation="generations", name="n", status=200, duration_ms=1.0)
    for _ in range(3):
        metrics.observe(trace)
    metrics.requests[("generations", "200")] = 1_234_567
    text = render(
        metrics, cache={}, cache_backend_errors=None, blob_background_failures=0, writer=None
    )
    assert 'imagegate_requests_total{operation="generations",status="200"} 1234567' in text


def test_a_gone_worker_keeps_its_counts_but_not_its_gauges(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)  # a process that has exited
    counter = '# HELP c_total A counter.\n# TYPE c_total counter\nc_total{a="x"} 5\n'
    gauge = "# HELP g A gauge.\n# TYPE g gauge\ng 7\n"
    (tmp_path / f"{dead_pid}.prom").write_text(counter + gauge)
    own = WorkerMetrics(tmp_path)
    merged = own.merged(counter.replace("5", "2") + gauge.replace("7", "1"))
    lines = merged.splitlines()
    assert 'c_total{a="x"} 7' in lines  # 5 from the gone worker + 2 from this one
    assert "g 1" in lines  # only the live worker's gauge
    assert "imagegate_metrics_workers 1" in lines
    assert (tmp_path / f"{own.pid}.prom").is_file()
