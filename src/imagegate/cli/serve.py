"""``imagegate serve``: the checks that make a start-up problem one line (bind, directories,
port, store), the start-up summary, then uvicorn on sockets already listening."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import inspect
import ipaddress
import logging
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError, load_config
from ..telemetry.logjson import use_json, uvicorn_log_config
from ..telemetry.workers import ENV as METRICS_DIR_ENV

log = logging.getLogger("imagegate")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` exposes only this machine. ``""`` (like ``0.0.0.0`` and
    ``::``) binds every interface, so it is not loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(config: Config) -> str | None:
    """Refuse to expose an unauthenticated gateway beyond loopback."""
    if config.api_keys:
        return None
    if not is_loopback(config.host):
        return (
            f"host: refusing to bind {config.host} without api_keys; "
            "set IMAGEGATE_API_KEYS or api_keys in the config"
        )
    log.warning("no api_keys configured: serving unauthenticated on loopback %s", config.host)
    return None


def fleet_warning(config: Config) -> str | None:
    """A deployment whose state is shared (Redis or PostgreSQL) is meant to run as several
    replicas; without ``signing_key`` each makes its own under its ``data_dir``, and replicas
    then refuse each other's signed URLs, console sessions and managed keys."""
    shared = config.shared_redis_url is not None or config.database_url is not None
    if not shared or config.signing_key:
        return None
    return (
        "signing_key is not set while Redis or PostgreSQL is shared: every replica will make "
        "its own key and refuse the others' signed URLs and managed keys "
        "(set IMAGEGATE_SIGNING_KEY to one value on every replica; docs/deployment.md)"
    )


def serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (or IMAGEGATE_CONFIG)")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8080)")
    p.add_argument("--workers", type=int, help="worker processes (default 1)")


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


class StartupError(Exception):
    """Serving cannot start; the message is the one line to print (exit status 2)."""


def check_dir(path: str, key: str) -> None:
    """Make ``path`` (a directory the gateway writes to) or say in one line why it cannot."""
    where = Path(path)
    if where.exists() and not where.is_dir():
        raise StartupError(f"{key}: {where} is not a directory")
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"{key}: cannot create {where}: {exc.strerror or exc}") from None
    try:
        with tempfile.TemporaryFile(dir=where):
            pass  # os.access says nothing true for root or read-only mounts: try a write
    except OSError as exc:
        raise StartupError(f"{key}: {where} is not writable: {exc.strerror or exc}") from None


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    shown = host or "every interface"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {shown} is already in use"
    if exc.errno == errno.EACCES:
        return f"port {port} on {shown}: permission denied (ports below 1024 need privileges)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"host: {shown} is not an address of this machine"
    return f"cannot listen on {shown} port {port}: {exc.strerror or exc}"


def listen(host: str, port: int, backlog: int = 2048) -> list[socket.socket]:
    """Bind and listen on every address ``host`` names, as uvicorn would on its own (asyncio's
    rules: SO_REUSEADDR, IPv6 sockets v6-only, ``""`` is every interface).

    Why here and not in uvicorn: a busy port is then known before anything is printed or
    started, and the sockets are handed to uvicorn, so no other process can take the port
    between this check and serving (a bind-and-close probe would leave that gap).
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise StartupError(f"host: cannot resolve {host!r}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address[0]) in seen:
                continue
            seen.add((family, address[0]))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # one ephemeral port for every address
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL and family == socket.AF_INET6 and infos[1:]:
                    sockets.pop().close()  # IPv6 is off on this host: serve the rest
                    continue
                raise StartupError(_bind_problem(host, port, exc)) from None
            sock.listen(backlog)
            sock.set_inheritable(True)  # the workers uvicorn spawns serve on it
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise StartupError(f"host: {host!r} names no address to listen on")
    return sockets


def check_store(config: Config) -> None:
    """Open the store once (applying migrations, creating a missing PostgreSQL schema) so a
    store that can never work is one line now, not a traceback from every worker. An
    unreachable one is only a warning: the workers keep retrying, as before."""
    from ..store import StoreUnavailable, open_store
    from ..store.postgres import SchemaError

    async def connect() -> None:
        store = open_store(config)
        try:
            await store.connect()
        finally:
            await store.close()

    try:
        asyncio.run(connect())
    except StoreUnavailable as exc:
        log.warning("store unavailable at start-up (traces will wait): %s", exc)
    except SchemaError as exc:
        raise StartupError(str(exc)) from None
    except ConfigError:
        raise
    except Exception as exc:
        key = "database_url" if config.database_url else "data_dir"
        raise StartupError(f"{key}: cannot open the store: {exc}") from None


def print_summary(config: Config, port: int) -> None:
    """The startup summary on stderr: text lines, or one JSON line with ``log_format: json``."""
    from ..providers.registry import Registry
    from ..summary import summary, summary_json

    shown = config.model_copy(update={"port": port})  # the real port when 0 was asked
    registry = Registry(config)  # adapters only: no session is opened before a call
    if config.log_format == "json":
        print(summary_json(shown, registry), file=sys.stderr)
        return
    print("imagegate: starting with", file=sys.stderr)
    for line in summary(shown, registry):
        print(f"  {line}", file=sys.stderr)


def _run_uvicorn(config: Config, sockets: list[socket.socket]) -> int:
    """uvicorn on sockets already listening (what ``uvicorn.run`` does after its own bind)."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG
    from uvicorn.supervisors import Multiprocess

    server_config = uvicorn.Config(
        "imagegate.api.app:app_factory",
        factory=True,
        host=config.host,
        port=config.port,
        workers=config.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=config.log_level,
        log_config=uvicorn_log_config(config.log_format, config.log_level) or LOGGING_CONFIG,
        # SIGTERM: stop accepting, let requests finish this long, cancel the rest, then the
        # lifespan shutdown flushes traces and blob writes (docs/deployment.md)
        timeout_graceful_shutdown=config.lifecycle.shutdown_grace_s,
    )
    server = uvicorn.Server(server_config)
    if config.workers > 1:
        # uvicorn < 0.36 takes the worker function as ``target``; later ones make their own
        extra: dict[str, Any] = {}
        if "target" in inspect.signature(Multiprocess).parameters:
            extra["target"] = server.run
        Multiprocess(server_config, sockets=sockets, **extra).run()
        return 0
    server.run(sockets=sockets)
    return 0 if server.started else 3  # uvicorn's STARTUP_FAILURE, as uvicorn.run exits


def serve(args: argparse.Namespace) -> int:
    if args.config:
        os.environ["IMAGEGATE_CONFIG"] = args.config
    for name, value in (("HOST", args.host), ("PORT", args.port), ("WORKERS", args.workers)):
        if value is not None:
            os.environ[f"IMAGEGATE_{name}"] = str(value)
    config = load_config()
    use_json(config.log_format)  # every log line JSON with log_format: json (logjson.py)
    problem = check_bind(config)
    if problem:
        print(f"imagegate: {problem}", file=sys.stderr)
        return 2
    raise_fd_limit()
    sockets: list[socket.socket] = []
    try:
        check_dir(config.data_dir, "data_dir")
        if config.storage.backend == "local":
            check_dir(config.storage.path, "storage.path")
        sockets = listen(config.host, config.port)
        check_store(config)
    except StartupError as exc:
        for sock in sockets:
            sock.close()
        print(f"imagegate: {exc}", file=sys.stderr)
        return 2
    port = int(sockets[0].getsockname()[1])
    warning = fleet_warning(config)  # after the checks: a fatal start stays one line
    if warning:
        log.warning("%s", warning)
    print_summary(config, port)
    print(f"imagegate: serving on http://{config.host}:{port}", file=sys.stderr)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the handler it
    # found: make that handler a clean exit, so a stopped gateway exits 0 (not -15).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    metrics_dir = worker_metrics_dir(config.workers)
    try:
        return _run_uvicorn(config, sockets)
    finally:
        for sock in sockets:
            sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def raise_fd_limit() -> None:
    """The soft limit on open files up to the hard one (the workers inherit it): a request in
    flight holds two sockets (client, provider), so the common soft default of 1024 caps a
    process near 500 calls in flight. The hard limit is the operator's (``ulimit -Hn``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def worker_metrics_dir(workers: int) -> str | None:
    """With several workers, a fresh directory where each publishes its metrics for the others
    to sum (``telemetry/workers.py``); the workers inherit its name in the environment. One
    worker needs none, and must not sum the files of some earlier run."""
    os.environ.pop(METRICS_DIR_ENV, None)
    if workers <= 1:
        return None
    path = tempfile.mkdtemp(prefix="imagegate-metrics-")
    os.environ[METRICS_DIR_ENV] = path
    return path
