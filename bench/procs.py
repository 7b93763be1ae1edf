"""Start, watch and stop the benchmark's own processes, and read their cost from /proc.

Every process is started in its own session (so its PID is its process-group id) and stopped
by that id: TERM, a bounded wait, then KILL. CPU is utime+stime of the whole process tree
(uvicorn ``--workers`` forks children), RSS is the sum of VmRSS over the tree.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin_prefix(cpus: str | None) -> list[str]:
    """``taskset -c <cpus>`` when asked and possible, else nothing."""
    if not cpus or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", cpus]


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()


def tree(root: int) -> list[int]:
    """``root`` and all its descendants (read from /proc)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(name))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


def _tree_sum(root: int, *indexes: int) -> int:
    """Sum of the given /proc/<pid>/stat fields (after the command) over ``root``'s tree."""
    total = 0
    for pid in tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            total += sum(int(fields[i]) for i in indexes)
    return total


def sys_seconds(root: int) -> float:
    """system (kernel) CPU seconds used so far by ``root``'s tree."""
    return _tree_sum(root, 12) / TICK


def cpu_seconds(root: int) -> float:
    """user+system CPU seconds used so far by ``root``'s tree."""
    return _tree_sum(root, 11, 12) / TICK


def main_thread_seconds(root: int) -> float:
    """CPU seconds of the main threads only (the event loops): the rest is worker threads."""
    total = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/task/{pid}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def minor_faults(root: int) -> int:
    """Minor page faults of ``root``'s tree so far: fresh memory touched (big buffers)."""
    return _tree_sum(root, 7)


def rss_bytes(root: int) -> int:
    total = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


class RssSampler:
    """Samples a tree's RSS in a thread; ``peak`` is the largest value seen."""

    def __init__(self, root: int, every_s: float = 0.05) -> None:
        self.root = root
        self.every_s = every_s
        self.start_bytes = rss_bytes(root)
        self.peak = self.start_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, rss_bytes(self.root))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, rss_bytes(self.root))


def settle_cpu(root: int, *, quiet_s: float = 0.3, max_s: float = 5.0) -> float:
    """Wait until the tree stops burning CPU (deferred work such as trace writes), then read.

    Work a gateway defers past the response still costs CPU per request; this makes sure the
    measured window includes it. Returns the CPU seconds at the end.
    """
    deadline = time.monotonic() + max_s
    last = cpu_seconds(root)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = cpu_seconds(root)
        if now - last <= 1.0 / TICK:
            return now
        last = now
    return last


@dataclass
class Proc:
    """A process we started; ``stop`` ends it and its group."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)


def start(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    cpus: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Start ``argv`` (optionally pinned) in its own session, output to ``log_path``.

    ``env`` is the child's whole environment when given (the gateway must not inherit a
    caller's ``IMAGEGATE_*`` overrides), else ours.
    """
    log = open(log_path, "wb")  # handed to the child, closed below
    try:
        popen = subprocess.Popen(
            [*pin_prefix(cpus), *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ) if env is None else env,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        log.close()
    return Proc(name, popen, log_path)


def wait_ready_line(proc: Proc, prefix: str, timeout_s: float = 20.0) -> str:
    """Wait for a line starting with ``prefix`` in the process log; return the rest."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in proc.log_path.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        if not proc.alive():
            break
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not become ready:\n{proc.log_tail()}")


def wait_http(proc: Proc, url: str, timeout_s: float = 60.0) -> None:
    """Wait until ``url`` answers any HTTP status (the server is accepting requests)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            break
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url}:\n{proc.log_tail()}")
