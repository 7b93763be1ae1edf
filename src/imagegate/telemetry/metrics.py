"""Prometheus text exposition for ``GET /metrics``: counters and histograms fed from finished
traces plus the components' own counters (cache, blob writes, trace writer). No client
library: the text format is small and this keeps the hot path to a few dict increments and
two bisections per request. Several workers of one ``imagegate serve`` are summed by
``workers.py``."""

from __future__ import annotations

import bisect
import functools
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from .trace import TraceRecord

# upper bounds of the histogram buckets (+Inf is implied): image calls take seconds to minutes
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
# width x height: 256², 512², 768², 1024², 1024x1536, 1536², 2048², 4096²
PIXEL_BUCKETS = (65536, 262144, 589824, 1048576, 1572864, 2359296, 4194304, 16777216)


class Histogram:
    """Counts per bucket (not cumulative; rendered cumulative), their sum and count."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += times
        self.sum += value * times

    def samples(self, name: str, **labels: str) -> list[tuple[str, str, float]]:
        out: list[tuple[str, str, float]] = []
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            le = _number(self.bounds[i]) if i < len(self.bounds) else "+Inf"
            out.append((f"{name}_bucket", _labels(**labels, le=le), seen))
        out.append((f"{name}_sum", _labels(**labels), self.sum))
        out.append((f"{name}_count", _labels(**labels), seen))
        return out


@functools.lru_cache(maxsize=64)  # a handful of sizes in practice; bounded for any input
def pixels_of(size: str | None) -> int | None:
    """``"1024x1536"`` → 1572864; None for ``auto``, aspect ratios or nothing."""
    if not size:
        return None
    width, x, height = size.partition("x")
    if not x or not width.isdigit() or not height.isdigit() or len(size) > 16:
        return None
    return int(width) * int(height)


def _number(value: float) -> str:
    """Prometheus text for a sample value: integers in full (``:g`` would print 1234567 as
    1.23457e+06, losing counts), other values as Python's shortest round-trip form."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Per-process counters of what the gateway answered and what it asked upstream."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()  # (operation, status)
        self.images: Counter[str] = Counter()  # operation -> images answered
        self.attempts: Counter[tuple[str, str]] = Counter()  # (provider, result)
        self.duration_s: defaultdict[str, float] = defaultdict(float)  # operation -> seconds
        self.cost_usd: defaultdict[str, float] = defaultdict(float)  # operation -> known cost
        self.latency: dict[str, Histogram] = {}  # operation -> request seconds
        self.pixels: dict[str, Histogram] = {}  # operation -> requested size of answered images

    def observe(self, trace: TraceRecord) -> None:
        op = trace.operation
        self.requests[(op, str(trace.status or 0))] += 1
        seconds = (trace.duration_ms or 0.0) / 1000
        self.duration_s[op] += seconds
        latency = self.latency.get(op)
        if latency is None:
            latency = self.latency[op] = Histogram(LATENCY_BUCKETS_S)
        latency.observe(seconds)
        if trace.status == 200:
            self.images[op] += trace.n or 1
            pixels = pixels_of(trace.size)
            if pixels is not None:
                sizes = self.pixels.get(op)
                if sizes is None:
                    sizes = self.pixels[op] = Histogram(PIXEL_BUCKETS)
                sizes.observe(pixels, trace.n or 1)
        if trace.cost_usd:
            self.cost_usd[op] += trace.cost_usd
        for attempt in trace.attempts:
            status = attempt.get("status")
            result = "ok" if status == 200 else f"{status}" if status else "error"
            self.attempts[(str(attempt.get("provider")), result)] += 1


def render(
    metrics: Metrics,
    *,
    cache: dict[str, int],
    cache_backend_errors: int | None,
    blob_background_failures: int,
    writer: dict[str, Any] | None,
    admission: dict[str, int] | None = None,
) -> str:
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(f"{name}{labels} {_number(value)}")

    def histograms(name: str, help_text: str, by_op: dict[str, Histogram]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} histogram")
        for op, histogram in sorted(by_op.items()):
            for sample, labels, value in histogram.samples(name, operation=op):
                out.append(f"{sample}{labels} {_number(value)}")

    requests = sorted(metrics.requests.items())
    family(
        "imagegate_requests_total",
        "counter",
        "Image requests answered, by status.",
        ((_labels(operation=op, status=st), n) for (op, st), n in requests),
    )
    family(
        "imagegate_images_total",
        "counter",
        "Images answered.",
        ((_labels(operation=op), n) for op, n in sorted(metrics.images.items())),
    )
    family(
        "imagegate_request_duration_seconds_sum",
        "counter",
        "Summed request time.",
        ((_labels(operation=op), s) for op, s in sorted(metrics.duration_s.items())),
    )
    histograms("imagegate_request_latency_seconds", "Request time.", metrics.latency)
    histograms(
        "imagegate_image_pixels",
        "Requested size (width x height) of answered images, per image.",
        metrics.pixels,
    )
    family(
        "imagegate_cost_usd_total",
        "counter",
        "Summed known cost of answered requests.",
        ((_labels(operation=op), c) for op, c in sorted(metrics.cost_usd.items())),
    )
    family(
        "imagegate_upstream_attempts_total",
        "counter",
        "Provider attempts, by result.",
        ((_labels(provider=p, result=r), n) for (p, r), n in sorted(metrics.attempts.items())),
    )
    family(
        "imagegate_cache_lookups_total",
        "counter",
        "Exact-match cache lookups.",
        ((_labels(result=k), v) for k, v in sorted(cache.items())),
    )
    if cache_backend_errors is not None:
        family(
            "imagegate_cache_backend_errors_total",
            "counter",
            "Cache backend (Redis) errors; requests were served uncached.",
            [("", cache_backend_errors)],
        )
    family(
        "imagegate_blob_background_failures_total",
        "counter",
        "Background image writes that failed.",
        [("", blob_background_failures)],
    )
    if writer is not None:
        for key, gauge, help_text in WRITER_GAUGES:
            family(f"imagegate_trace_writer_{gauge}", "gauge", help_text, [("", writer[key])])
        for key, help_text in WRITER_COUNTERS:
            family(f"imagegate_trace_writer_{key}_total", "counter", help_text, [("", writer[key])])
    if admission is not None:
        for key, help_text in ADMISSION_COUNTERS:
            if key in admission:
                family(
                    f"imagegate_admission_{key}_total", "counter", help_text, [("", admission[key])]
                )
    return "\n".join(out) + "\n"


# (stats key, metric name, help) of the trace writer's gauges and counters
WRITER_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("pending", "pending", "Traces and upserts not yet in the store (memory and spill files)."),
    ("buffered", "buffered_items", "Traces and upserts waiting in memory."),
    ("buffered_bytes", "buffered_bytes", "Estimated bytes waiting in memory."),
    ("spill_pending", "spill_pending_items", "Items waiting in spill files."),
)
WRITER_COUNTERS: tuple[tuple[str, str], ...] = (
    ("written", "Items written to the store."),
    ("spilled", "Items moved to a spill file (memory budget, outage or shutdown)."),
    ("replayed", "Items written to the store from a spill file."),
    ("poison", "Items the store rejected on their own, kept in spill/poison.jsonl."),
    ("dropped", "Items lost (only when no spill directory is usable)."),
    ("failures", "Failed batch writes (retried)."),
)

# (stats key, help) of admission's counters (rate limits and budgets), per process
ADMISSION_COUNTERS: tuple[tuple[str, str], ...] = (
    ("rate_limited", "Requests refused by a rate limit (429 rate_limit_exceeded)."),
    ("budget_refused", "Requests refused by a budget (429 budget_exceeded)."),
    ("fail_open", "Requests admitted unchecked because the shared counters (Redis) failed."),
    ("redis_errors", "Errors talking to the Redis of rate limits and budgets."),
    ("unpriced", "Requests that passed a budget without a known price."),
)
