"""A private, throwaway PostgreSQL cluster for tests that stop and start the database.

The shared PostgreSQL on :5432 is never touched: ``initdb`` into a temp dir, its own port
and socket dir, its own ``pg_ctl``; removed afterwards. Run as ``postgres`` when we are root
(PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from live import free_port

SERVER_TOOLS = ("initdb", "pg_ctl")


def _has_tools(bin_dir: Path) -> bool:
    return all((bin_dir / tool).is_file() for tool in SERVER_TOOLS)


def pg_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live: ``pg_config --bindir``, then the distribution
    layouts (``/usr/lib/postgresql/<v>/bin``, ``/usr/pgsql-<v>/bin``), then ``PATH``."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], check=True, capture_output=True, text=True, timeout=30
            )
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        found = glob.glob(pattern)
        candidates += [Path(p) for p in sorted(found, key=_version_key, reverse=True)]
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    return next((c for c in candidates if _has_tools(c)), None)


def _version_key(path: str) -> tuple[int, ...]:
    digits = "".join(ch if ch.isdigit() else " " for ch in path).split()
    return tuple(int(d) for d in digits)


def missing_tooling() -> str | None:
    """Why a private cluster cannot run here, or None when it can."""
    if pg_bin_dir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found via pg_config --bindir,"
            " /usr/lib/postgresql/*/bin or PATH: install the PostgreSQL server package"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root, and no runuser to start PostgreSQL as the postgres user"
    return None


class Cluster:
    """A private PostgreSQL cluster in a temp dir."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="imagegate-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        initdb = str(self.bin / "initdb")
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off"
        )
        log = str(self.root / "log")
        pg_ctl = str(self.bin / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-w", "-l", log, "start")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
