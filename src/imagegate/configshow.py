"""``imagegate config show``: the effective config, secrets masked, each value with its source.

Why: with a file, env variables, ``${VAR}`` references and defaults all feeding one value, the
quickest answer to "why does the gateway do that" is the merged result and where each leaf came
from. Secrets are masked so the output can be pasted into an issue.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from .config import Sources, explain_config

MASK = "***"
# keys whose values are secrets wherever they appear
SECRET_KEYS = frozenset(
    {
        "api_key",
        "secret_access_key",
        "signing_key",
        "key_pepper",
        "access_token",
        "secret",
        "session_token",
        "credentials",
    }
)
# header names that carry credentials (``providers.*.headers``)
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|password", re.IGNORECASE)

CommandTable = dict[
    str,
    tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
]


def mask_url(value: str) -> str:
    """``scheme://user:password@host`` → ``scheme://user:***@host``; anything else unchanged."""
    if "://" not in value or "@" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not password:
        return value
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def mask(value: Any, path: tuple[str, ...] = ()) -> Any:
    """A copy of a config dump with every secret replaced by ``***``."""
    key = path[-1] if path else ""
    if isinstance(value, dict):
        return {k: mask(v, (*path, str(k))) for k, v in value.items()}
    if value is None or value == "":
        return value
    if key == "api_keys" and isinstance(value, list):
        return [MASK for _ in value]
    if key in SECRET_KEYS:
        return MASK
    if len(path) >= 2 and path[-2] == "headers" and _SECRET_HEADER.search(key):
        return MASK
    if isinstance(value, list):
        return [mask(v, path) for v in value]
    if isinstance(value, str):
        return mask_url(value)
    return value


def _flow(value: Any) -> str:
    """One value as inline YAML (quoted where YAML needs it)."""
    text = yaml.safe_dump([value], default_flow_style=True, width=10**9, allow_unicode=True)
    return text.strip()[1:-1]


def _source(path: tuple[str, ...], sources: Sources) -> str:
    for end in range(len(path), 0, -1):
        found = sources.get(path[:end])
        if found:
            return found
    return "default"


def render(dump: dict[str, Any], sources: Sources) -> str:
    """YAML lines for ``dump``, each leaf with a trailing ``# <source>`` comment."""
    lines: list[str] = []

    def walk(node: dict[str, Any], path: tuple[str, ...], indent: str) -> None:
        for key, value in node.items():
            here = (*path, str(key))
            if isinstance(value, dict) and value:
                lines.append(f"{indent}{_flow(key)}:")
                walk(value, here, indent + "  ")
            else:
                lines.append(f"{indent}{_flow(key)}: {_flow(value)}  # {_source(here, sources)}")

    walk(dump, (), "")
    return "\n".join(lines) + "\n"


def show(args: argparse.Namespace) -> int:
    config, sources, file = explain_config(args.config)
    where = str(file) if file else "none (embedded defaults and env)"
    sys.stdout.write(f"# config file: {where}\n")
    sys.stdout.write(render(mask(config.model_dump(mode="json")), sources))
    return 0


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (or IMAGEGATE_CONFIG)")
    sub = p.add_subparsers(dest="action", required=True)
    shown = sub.add_parser("show", help="print the effective config, secrets masked")
    shown.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def register(commands: CommandTable) -> None:
    """Add ``config`` (``config show``) to the CLI's command table."""
    commands["config"] = ("inspect the configuration", _config_args, show)
