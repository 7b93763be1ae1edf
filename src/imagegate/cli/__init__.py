"""The ``imagegate`` command: ``serve`` and the operator's tools.

Each command is a (help, add-arguments, run) entry of ``COMMANDS``: ``serve`` (``serve.py``),
``traces`` and ``prompts`` (``store.py``), ``keys``, ``workspaces`` and ``usage``
(``admin.py``), ``config show`` (``configshow.py``), ``jobs`` (``jobs.py``). The store commands
open the configured store directly, through the ``Store`` protocol, and print the API's JSON shapes
(``api/views.py``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..config import ConfigError, load_config
from ..configshow import register as register_config_commands
from .admin import register as register_admin_commands
from .common import CommandTable
from .jobs import register as register_job_commands
from .serve import check_bind, check_dir, check_store, is_loopback, listen, serve, serve_args
from .store import register as register_store_commands

COMMANDS: CommandTable = {"serve": ("run the gateway", serve_args, serve)}
register_store_commands(COMMANDS)  # imagegate traces, imagegate prompts …
register_admin_commands(COMMANDS)  # imagegate keys, workspaces, usage
register_config_commands(COMMANDS)  # imagegate config show
register_job_commands(COMMANDS)  # imagegate jobs list|show|cancel


def startup_log_level(args: argparse.Namespace) -> str:
    """The validated ``log_level`` of the config the command will use (file, env, flags).

    Read before logging is set up so a bad ``IMAGEGATE_LOG_LEVEL`` is a config error (exit 2,
    one line) instead of a traceback from ``logging``; raises ``ConfigError``.
    """
    flags = {key: getattr(args, key, None) for key in ("host", "port", "workers")}
    return load_config(getattr(args, "config", None), overrides=flags).log_level


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagegate", description="Self-hosted image gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    try:
        level = startup_log_level(args)
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        return COMMANDS[args.command][2](args)
    except ConfigError as exc:
        print(f"imagegate: config error: {exc}", file=sys.stderr)
        return 2


__all__ = [
    "COMMANDS",
    "check_bind",
    "check_dir",
    "check_store",
    "is_loopback",
    "listen",
    "main",
    "startup_log_level",
]
