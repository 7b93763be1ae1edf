"""``/metrics`` summed over every worker process of one ``imagegate serve --workers N``.

Each worker keeps its own counters in memory (the hot path stays a few dict increments) and
writes its whole Prometheus text to ``<dir>/<pid>.prom`` about once a second, and again
whenever it answers ``/metrics``. The worker asked reads every file and sums the samples:
counters and histogram buckets of every worker that ever ran (a worker that died or was
replaced keeps its counts, so totals never go down), gauges of the live ones only. The
directory is made and removed by the parent (``cli/serve.py``) and named by ``ENV``.

Why files rather than prometheus-client's multiprocess mode: the gateway renders its own text
(no client library on the hot path), and one small file per worker is all the sum needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("imagegate.metrics")
ENV = "IMAGEGATE_METRICS_DIR"
EVERY_S = 1.0
MAX_FILE_BYTES = 4 * 1024 * 1024  # a worker's text is a few KB; anything larger is not ours
WORKERS_METRIC = "imagegate_metrics_workers"


class WorkerMetrics:
    def __init__(self, directory: Path, pid: int | None = None, every_s: float = EVERY_S):
        self.directory = directory
        self.pid = pid or os.getpid()
        self.path = directory / f"{self.pid}.prom"
        self.every_s = every_s
        self._last = ""
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_env(cls) -> WorkerMetrics | None:
        where = os.environ.get(ENV)
        return cls(Path(where)) if where and Path(where).is_dir() else None

    def write(self, text: str) -> None:
        """This worker's text, replaced atomically (a reader never sees half a file)."""
        if text == self._last:
            return
        temp = self.path.with_suffix(".tmp")
        temp.write_text(text)
        os.replace(temp, self.path)
        self._last = text

    def start(self, text: Callable[[], str]) -> None:
        async def loop() -> None:
            while True:
                try:
                    self.write(text())
                except OSError as exc:  # a full disk must not stop the worker
                    log.warning("cannot write worker metrics to %s: %s", self.path, exc)
                await asyncio.sleep(self.every_s)  # a period, not a synchronisation

        self._task = asyncio.create_task(loop(), name="worker-metrics")

    async def stop(self, text: str) -> None:
        """The last counts, kept after this worker is gone."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(OSError):
            self.write(text)

    def merged(self, own: str) -> str:
        """Every worker's text summed, ``own`` (this worker's, fresh) included."""
        with contextlib.suppress(OSError):
            self.write(own)
        texts: list[tuple[str, bool]] = [(own, True)]
        for path in sorted(self.directory.glob("*.prom")):
            pid = path.stem
            if not pid.isdigit() or int(pid) == self.pid:
                continue
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    continue
                texts.append((path.read_text(), _alive(int(pid))))
            except OSError:
                continue  # removed meanwhile
        return merge(texts)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class _Family:
    __slots__ = ("help", "kind", "samples")

    def __init__(self, help_line: str, kind: str) -> None:
        self.help = help_line
        self.kind = kind
        self.samples: dict[str, float] = {}  # "name{labels}" -> value, in first-seen order


def merge(texts: list[tuple[str, bool]]) -> str:
    """Sum Prometheus texts sample by sample; gauges only from texts marked live."""
    families: dict[str, _Family] = {}
    for text, live in texts:
        current: _Family | None = None
        help_line = ""
        for line in text.splitlines():
            if line.startswith("# HELP "):
                help_line = line
            elif line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                current = families.get(name)
                if current is None:
                    current = families[name] = _Family(help_line, kind)
            elif line and not line.startswith("#") and current is not None:
                key, _, value = line.rpartition(" ")
                if current.kind == "gauge" and not live:
                    continue
                try:
                    number = float(value)
                except ValueError:
                    continue
                current.samples[key] = current.samples.get(key, 0.0) + number
    out: list[str] = []
    for name, family in families.items():
        out += (
            [family.help, f"# TYPE {name} {family.kind}"]
            if family.help
            else [f"# TYPE {name} {family.kind}"]
        )
        out += [f"{key} {_number(value)}" for key, value in family.samples.items()]
    workers = sum(1 for _, is_live in texts if is_live)
    out += [
        f"# HELP {WORKERS_METRIC} Worker processes whose metrics are summed here (live).",
        f"# TYPE {WORKERS_METRIC} gauge",
        f"{WORKERS_METRIC} {workers}",
    ]
    return "\n".join(out) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
