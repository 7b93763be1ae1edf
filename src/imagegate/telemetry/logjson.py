"""``log_format: json``: every log line one JSON object that names the request it belongs to.

The access log renders its own lines (``access.py``, with ``trace_id``); this module formats
every other record (the gateway's warnings, uvicorn's own lines) the same way::

    {"time": "2026-01-31T12:00:00.123Z", "level": "warning", "logger": "imagegate.cache",
     "message": "...", "trace_id": "01J...", "otel_trace_id": "4bf9...", "span_id": "00f0..."}

``trace_id`` is the ``x-orq-trace-id`` of the request being served when the line was logged
(``CURRENT_TRACE``, set by the gateway for the length of a request and inherited by the tasks
it starts); null outside a request. ``otel_trace_id``/``span_id`` are there when OpenTelemetry
is on and a span is current, so a line can be found from the trace in the tracing backend.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from typing import Any

from . import otel
from .access import iso_time

CURRENT_TRACE: ContextVar[str | None] = ContextVar("imagegate_trace_id", default=None)
MAX_MESSAGE_CHARS = 8192


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        doc: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message[:MAX_MESSAGE_CHARS],
            "trace_id": CURRENT_TRACE.get(),
        }
        tracing = otel.ACTIVE
        if tracing is not None:
            ids = tracing.current_ids()
            if ids is not None:
                doc["otel_trace_id"], doc["span_id"] = ids
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)[-MAX_MESSAGE_CHARS:]
        return json.dumps(doc, separators=(",", ":"), default=str)  # ASCII: one line each


def uvicorn_log_config(log_format: str, log_level: str) -> dict[str, Any] | None:
    """The ``log_config`` for uvicorn (applied in every worker): with ``json``, one JSON
    formatter for the root logger and uvicorn's; None keeps uvicorn's own text setup. The
    access logger keeps the handler ``access.py`` gives it (its lines are JSON already)."""
    if log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": log_level.upper()},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def use_json(log_format: str) -> None:
    """Format the root logger's handlers as JSON now (the lines before uvicorn starts)."""
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
