"""What every store command shares: its flags, bad input as one line, opening the store,
printing tables and JSON."""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from ..config import Config
from ..errors import GatewayError
from ..store import Store, StoreError, StoreUnavailable
from ..workspaces import DEFAULT_WORKSPACE, valid_workspace_id

CommandTable = dict[
    str,
    tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
]


Work = Callable[[Store], Coroutine[Any, Any, int]]


class BadInput(Exception):
    """A command-line value that is wrong: printed as one line, exit status 2."""


def checks_input(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """``BadInput`` raised by ``command`` → one line on standard error and exit status 2."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except BadInput as exc:
            print(f"imagegate: {exc}", file=sys.stderr)
            return 2

    return run


def config_arg(p: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """``--config``; ``nested`` (a sub-command's copy) only overrides the parent's value when
    given, so both ``prompts --config F list`` and ``prompts list --config F`` work."""
    default = argparse.SUPPRESS if nested else None
    p.add_argument("--config", default=default, help="YAML config file (or IMAGEGATE_CONFIG)")


def workspace_arg(p: argparse.ArgumentParser, *, nested: bool = False) -> None:
    default = argparse.SUPPRESS if nested else DEFAULT_WORKSPACE
    p.add_argument(
        "--workspace", default=default, help=f"workspace id (default: {DEFAULT_WORKSPACE})"
    )


def store_args(p: argparse.ArgumentParser, *, nested: bool = False) -> None:
    config_arg(p, nested=nested)
    workspace_arg(p, nested=nested)


def workspace_id(value: str, flag: str = "--workspace") -> str:
    if not valid_workspace_id(value):
        raise BadInput(
            f"{flag} {value[:80]!r}: lowercase letters, digits, '-' and '_' (at most 63),"
            " starting with a letter or digit"
        )
    return value


def describe_store(config: Config) -> str:
    """Which database a command reads (password masked): a relative ``data_dir`` or the wrong
    ``--config`` otherwise shows up only as an empty listing."""
    from ..configshow import mask_url
    from ..store import DB_FILE

    if config.database_url and not config.database_url.startswith("sqlite:///"):
        return mask_url(config.database_url)
    if config.database_url:
        path = Path(config.database_url.removeprefix("sqlite:///"))
    else:
        path = Path(config.data_dir) / DB_FILE
    path = path.expanduser().absolute()
    return str(path) if path.exists() else f"{path} (does not exist yet: nothing recorded there)"


def run_store(config: Config, work: Work) -> int:
    """Open the store ``config`` names, run ``work`` on it, close it; store errors → exit 1."""
    from ..store import open_store

    print(f"imagegate: reading {describe_store(config)}", file=sys.stderr)

    async def main() -> int:
        store = open_store(config)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        print(f"imagegate: store unavailable: {exc}", file=sys.stderr)
        return 1
    except (GatewayError, StoreError) as exc:  # a refused body or value, a taken id
        print(f"imagegate: {exc.message}", file=sys.stderr)
        return 1


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain left-aligned text table."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"
