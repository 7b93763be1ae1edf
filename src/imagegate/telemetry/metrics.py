"""Prometheus text exposition for ``GET /metrics``: counters fed from finished traces plus
the components' own counters (cache, blob writes, trace writer). No client library: the text
format is small and this keeps the hot path to a few dict increments per request."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from .trace import TraceRecord


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

    def observe(self, trace: TraceRecord) -> None:
        op = trace.operation
        self.requests[(op, str(trace.status or 0))] += 1
        self.duration_s[op] += (trace.duration_ms or 0.0) / 1000
        if trace.status == 200:
            self.images[op] += trace.n or 1
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
            out.append(f"{name}{labels} {value:g}")

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
            family(f"imagegate_trace_writer_{key}_total", "counter", help_text,
                   [("", writer[key])])  # fmt: skip
    if admission is not None:
        for key, help_text in ADMISSION_COUNTERS:
            if key in admission:
                family(f"imagegate_admission_{key}_total", "counter", help_text,
                       [("", admission[key])])  # fmt: skip
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
