"""Traces as the console shows them: plain values for the templates (no HTML here).

``timeline`` lays the attempts of a request end to end (each retry's wait included) on a
0..1000 axis for the SVG drawn by ``trace.html``; ``replay_curl`` writes the command that sends
the same request again, from what the trace kept of the body.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import orjson

from ..models import ROUTING_FIELDS
from ..store import TraceRecord

AXIS = 1000.0
# what a body carries besides its parameters: routing (top level or under orq), metadata
NOT_PARAMETERS = frozenset({"orq", "metadata", *ROUTING_FIELDS})


def provider_of(model: str | None) -> str | None:
    return model.partition("/")[0] if model and "/" in model else None


def status_class(status: int | None) -> str:
    if status == 200:
        return "ok"
    if status is None or status >= 500 or status == 499:
        return "bad"
    return "warn"


@dataclass(slots=True)
class Bar:
    """One attempt (or the wait before a retry) on the timeline."""

    row: int
    x: float
    width: float
    kind: str  # ok | bad | warn | wait
    label: str


def timeline(attempts: list[dict[str, Any]]) -> tuple[list[Bar], float]:
    """Bars for each attempt and wait, in order, and the total milliseconds they span."""
    spans: list[tuple[int, float, float, str, str]] = []
    at = 0.0
    for row, a in enumerate(attempts):
        duration = float(a.get("duration_ms") or 0.0)
        status = a.get("status")
        label = f"{a.get('model')} #{a.get('attempt')}: {status or 'no answer'}"
        spans.append((row, at, duration, status_class(status), label))
        at += duration
        wait = a.get("wait_ms")
        if wait:
            spans.append((row, at, float(wait), "wait", f"wait {float(wait):.0f} ms"))
            at += float(wait)
    scale = AXIS / at if at > 0 else 0.0
    bars = [
        Bar(row, round(x * scale, 1), max(round(w * scale, 1), 2.0), kind, label)
        for row, x, w, kind, label in spans
    ]
    return bars, at


def routing_options(trace: TraceRecord) -> dict[str, Any]:
    """The ``orq`` object as sent, with the top-level twins the caller used merged in."""
    sent = trace.request or {}
    out: dict[str, Any] = dict(sent.get("orq") or {}) if isinstance(sent.get("orq"), dict) else {}
    for name in ROUTING_FIELDS:
        if name in sent:
            out[name] = sent[name]
    return out


def parameters(trace: TraceRecord) -> dict[str, Any]:
    """The request's own parameters as sent (no routing options, no files)."""
    sent = trace.request or {}
    return {k: v for k, v in sent.items() if k not in NOT_PARAMETERS}


def pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def replay_curl(trace: TraceRecord, base_url: str) -> str:
    """A curl command that sends this request again (files as ``@image.png`` placeholders)."""
    body: dict[str, Any] = dict(trace.request or {})
    body.setdefault("model", trace.requested_model)
    if trace.prompt is not None:
        body["prompt"] = trace.prompt
    url = f"{base_url}/v2/router/images/{trace.operation}"
    lines = [f"curl -s {shlex.quote(url)}", '-H "Authorization: Bearer $IMAGEGATE_API_KEY"']
    if trace.operation == "generations":
        lines.append("-H 'content-type: application/json'")
        lines.append("-d " + shlex.quote(orjson.dumps(body).decode()))
    else:
        for name, value in body.items():
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            lines.append("--form-string " + shlex.quote(f"{name}={text}"))
        lines.append("-F image=@image.png")
    return " \\\n  ".join(lines)
