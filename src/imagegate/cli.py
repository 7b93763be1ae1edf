"""``imagegate serve`` and friends."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Callable

from .config import Config, ConfigError, load_config

log = logging.getLogger("imagegate")
Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] = {}


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


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (or IMAGEGATE_CONFIG)")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8080)")
    p.add_argument("--workers", type=int, help="worker processes (default 1)")


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.config:
        os.environ["IMAGEGATE_CONFIG"] = args.config
    for name, value in (("HOST", args.host), ("PORT", args.port), ("WORKERS", args.workers)):
        if value is not None:
            os.environ[f"IMAGEGATE_{name}"] = str(value)
    config = load_config()
    problem = check_bind(config)
    if problem:
        print(f"imagegate: {problem}", file=sys.stderr)
        return 2
    print(f"imagegate: serving on http://{config.host}:{config.port}", file=sys.stderr)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the handler it
    # found: make that handler a clean exit, so a stopped gateway exits 0 (not -15).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "imagegate.api.app:app_factory",
        factory=True,
        host=config.host,
        port=config.port,
        workers=config.workers if config.workers > 1 else None,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=config.log_level,
        timeout_graceful_shutdown=30,
    )
    return 0


COMMANDS["serve"] = ("run the gateway", _serve_args, serve)

from .store.commands import register as _register_store_commands  # noqa: E402

_register_store_commands(COMMANDS)  # imagegate traces, imagegate prompts …
from .store.admin_commands import register as _register_admin_commands  # noqa: E402

_register_admin_commands(COMMANDS)  # imagegate keys, workspaces, usage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagegate", description="Self-hosted image gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("IMAGEGATE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command][2](args)
    except ConfigError as exc:
        print(f"imagegate: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
