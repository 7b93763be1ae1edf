"""Sample the gateway with py-spy while a scenario's load runs, and say where the time goes.

``py-spy record --format raw`` writes collapsed stacks (``f1;f2;...;fN count``). We fold them
into two tables — self time per function and inclusive time per function — plus a per-area
breakdown (our package by module, then aiohttp, starlette, uvicorn, the event loop...). The
raw file is kept so a flamegraph can be drawn from it later.

py-spy cannot always tell an idle thread from a busy one here (worker threads blocked in
``queue.get()`` show up as running), so a sample whose innermost frame sits on a blocking
wait (``.get()``, ``.wait()``, ``.acquire()``) is counted as idle and left out.
"""

from __future__ import annotations

import linecache
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from . import load

IDLE_LINE = re.compile(r"\.get\((block=True)?\)|\.wait\(|\.acquire\(|\bselect\(")
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
AREAS = (
    ("imagegate/", None),
    ("aiohttp/", "aiohttp"),
    ("starlette/", "starlette"),
    ("uvicorn/", "uvicorn"),
    ("python_multipart/", "python-multipart"),
    ("multipart/", "python-multipart"),
    ("pydantic", "pydantic"),
    ("asyncio/", "asyncio"),
    ("uvloop", "uvloop"),
    ("orjson", "orjson"),
    ("base64", "base64"),
    ("ulid", "ulid"),
    ("aiosqlite", "aiosqlite"),
    ("sqlite3", "sqlite3"),
    ("json/", "json"),
)


def py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    if local.is_file():
        return str(local)
    return shutil.which("py-spy")


def frame_name(frame: str) -> str:
    """``handle (imagegate/gateway.py:140)`` → ``imagegate/gateway.py:handle``."""
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{match.group('func')}"


def is_idle(frame: str) -> bool:
    """Is this innermost frame a thread blocked on a queue, lock or event?"""
    match = FRAME.match(frame)
    if match is None or not match.group("line"):
        return False
    for root in sys.path:
        line = linecache.getline(str(Path(root) / match.group("file")), int(match.group("line")))
        if line:
            return IDLE_LINE.search(line) is not None
    return False


def area_of(name: str) -> str:
    for needle, label in AREAS:
        if needle in name:
            if label is None:  # our own code: by module
                return name.split(":", 1)[0]
            return label
    return "other (C / stdlib)"


def summarize(raw_path: Path, top: int = 25) -> str:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = idle = 0
    idle_cache: dict[str, bool] = {}
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        leaf = frames[-1]
        if idle_cache.setdefault(leaf, is_idle(leaf)):
            idle += count
            continue
        names = [frame_name(f) for f in frames]
        total += count
        self_time[names[-1]] += count
        areas[area_of(names[-1])] += count
        for name in set(names):
            inclusive[name] += count
    if total == 0:
        return "no samples\n"

    def table(title: str, counter: Counter[str]) -> list[str]:
        lines = [f"## {title}", "", "| % | function |", "|---:|---|"]
        lines += [f"| {100 * c / total:.1f} | `{n}` |" for n, c in counter.most_common(top)]
        return [*lines, ""]

    out = [f"samples: {total} busy, {idle} idle (left out)", ""]
    out += table("self time by area (where the CPU actually burns)", areas)
    out += table("self time by function", self_time)
    out += table("inclusive time by function", inclusive)
    return "\n".join(out)


def record(pid: int, spec: load.Load, out_dir: Path, name: str, *, prefer_wrk: bool) -> Path:
    """Run ``spec`` while py-spy samples ``pid``; returns the summary file."""
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    raw = out_dir / f"profile-{name}.raw.txt"
    duration = max(1, round(spec.duration_s))
    sampler = subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            "400",
            "--duration",
            str(duration),
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        load.run(spec, prefer_wrk=prefer_wrk)
        _, err = sampler.communicate(timeout=duration + 30)
    finally:
        if sampler.poll() is None:
            sampler.terminate()
            sampler.wait(timeout=10)
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
    summary = out_dir / f"profile-{name}.md"
    summary.write_text(f"# py-spy profile: {name}\n\n" + summarize(raw))
    return summary
