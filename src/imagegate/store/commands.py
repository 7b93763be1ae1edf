"""``imagegate traces`` and ``imagegate prompts …``: the store from the command line.

They open the configured store directly (no running server needed) and print a table or JSON.
Every command takes ``--config`` (like ``serve``) and works in one workspace (``--workspace``,
default ``default``). Bad input is one line on standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import re
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from ..config import Config, load_config
from ..errors import GatewayError
from ..telemetry.trace import TraceRecord
from ..workspaces import DEFAULT_WORKSPACE, valid_workspace_id
from .base import StoreUnavailable, TraceQuery
from .sql import SqlStore
from .views import iso, prompt_view, trace_view, version_view

CommandTable = dict[
    str,
    tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
]


Work = Callable[[SqlStore], Coroutine[Any, Any, int]]


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
    p.add_argument("--workspace", default=default,
                   help=f"workspace id (default: {DEFAULT_WORKSPACE})")  # fmt: skip


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


def _run(args: argparse.Namespace, work: Work) -> int:
    return run_store(load_config(args.config), work)


def describe_store(config: Config) -> str:
    """Which database a command reads (password masked): a relative ``data_dir`` or the wrong
    ``--config`` otherwise shows up only as an empty listing."""
    from ..configshow import mask_url
    from . import DB_FILE

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
    from . import open_store

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
    except GatewayError as exc:
        print(f"imagegate: {exc.message}", file=sys.stderr)
        return 1


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain left-aligned text table."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]  # fmt: skip
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


# --- imagegate traces --------------------------------------------------------------------------
def _traces_args(p: argparse.ArgumentParser) -> None:
    store_args(p)
    p.add_argument("--limit", type=int, default=20, help="how many (newest first, default 20)")
    p.add_argument("--identity", help="only this identity id")
    p.add_argument("--thread", help="only this thread id")
    p.add_argument("--name", help="only traces with this name")
    p.add_argument("--model", help="only this requested or served model")
    p.add_argument(
        "--status", help="success, error, an HTTP status or an error code (rate_limit_exceeded)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


# an orq error code: snake_case with at least one "_" (so a typo like "sucess" is refused)
ERROR_CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
SCAN_PAGE = 500  # traces read per query while filtering by error code


def status_filter(query: TraceQuery, status: str | None) -> str | None:
    """Apply ``--status`` to ``query``; returns the error code to filter on (the store has no
    index on it, so those are picked out of the failed traces here)."""
    if not status:
        return None
    if status in ("success", "error"):
        query.succeeded = status == "success"
        return None
    if status.isdigit():
        query.status = int(status)
        return None
    if len(status) <= 64 and ERROR_CODE.fullmatch(status):
        query.succeeded = False
        return status
    raise BadInput(
        f"--status {status[:80]!r}: success, error, an HTTP status or an error code"
        " such as rate_limit_exceeded"
    )


async def list_traces(store: SqlStore, ws: str, query: TraceQuery, code: str | None) -> list[Any]:
    """The newest ``query.limit`` traces, only those failing with ``code`` when given."""
    if code is None:
        return (await store.list_traces(ws, query)).items
    wanted, query.limit = query.limit, SCAN_PAGE
    found: list[TraceRecord] = []
    while len(found) < wanted:
        page = await store.list_traces(ws, query)
        found += [t for t in page.items if t.error_code == code]
        if page.next_cursor is None:
            break
        query.cursor = page.next_cursor
    return found[:wanted]


@checks_input
def traces_command(args: argparse.Namespace) -> int:
    ws = workspace_id(args.workspace)
    query = TraceQuery(limit=max(1, min(args.limit, 1000)), identity_id=args.identity,
                       thread_id=args.thread, name=args.name, model=args.model)  # fmt: skip
    code = status_filter(query, args.status)

    async def work(store: SqlStore) -> int:
        items = await list_traces(store, ws, query, code)
        if args.json:
            print_json([trace_view(t) for t in items])
            return 0
        rows = [
            [
                (iso(t.started_at) or "")[:19].replace("T", " "), t.id, t.name,
                str(t.status or "-"), t.error_code or "-", t.requested_model or "-",
                t.served_model or "-", str(t.n or "-"), t.size or "-", t.cache or "-",
                money(t.cost_usd), "-" if t.duration_ms is None else f"{t.duration_ms:.0f}",
                t.identity_id or "-",
            ]
            for t in items
        ]  # fmt: skip
        headers = ["TIME (UTC)", "ID", "NAME", "STATUS", "ERROR", "MODEL", "SERVED", "N",
                   "SIZE", "CACHE", "COST", "MS", "IDENTITY"]  # fmt: skip
        print(table(rows, headers))
        return 0

    return _run(args, work)


# --- imagegate prompts -------------------------------------------------------------------------
def _version_args(p: argparse.ArgumentParser, template_required: bool) -> None:
    p.add_argument("--template", required=template_required,
                   help="prompt text; {{input}} stands for the caller's prompt")  # fmt: skip
    p.add_argument("--model", help="provider/model that replaces the request's model")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="default parameter, e.g. size=1024x1024 (repeatable)")  # fmt: skip


def _prompts_args(p: argparse.ArgumentParser) -> None:
    store_args(p)
    sub = p.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a prompt (and its version 1)")
    create.add_argument("--id", help="prompt id (default: a new ULID)")
    create.add_argument("--name")
    create.add_argument("--description")
    _version_args(create, template_required=False)
    add = sub.add_parser("add-version", help="add a version to a prompt")
    add.add_argument("id")
    _version_args(add, template_required=True)
    listing = sub.add_parser("list", help="list prompts")
    show = sub.add_parser("show", help="show a prompt and its versions")
    show.add_argument("id")
    show.add_argument("--version", help="one version: a number or 'latest'")
    for action in (create, add, listing, show):
        store_args(action, nested=True)


def _params(pairs: list[str]) -> dict[str, Any] | None:
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GatewayError(f"--param {pair!r}: expected KEY=VALUE", status=400)
        try:
            out[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            out[key] = value
    return out


@checks_input
def prompts_command(args: argparse.Namespace) -> int:
    from .prompts import add_version, create_prompt

    ws = workspace_id(args.workspace)

    async def work(store: SqlStore) -> int:
        if args.action == "create":
            body = {"id": args.id, "name": args.name, "description": args.description,
                    "template": args.template, "model": args.model,
                    "parameters": _params(args.param)}  # fmt: skip
            prompt, version = await create_prompt(store, ws, {k: v for k, v in body.items() if v})
            print_json(prompt_view(prompt, latest=version))
        elif args.action == "add-version":
            raw = {"template": args.template, "model": args.model,
                   "parameters": _params(args.param)}  # fmt: skip
            version = await add_version(store, ws, args.id, {k: v for k, v in raw.items() if v})
            if version is None:
                print(f"imagegate: prompt {args.id!r} not found", file=sys.stderr)
                return 1
            print_json(version_view(version))
        elif args.action == "list":
            page = await store.list_prompts(ws, None, 1000)
            rows = [[p.id, p.name or "-", str(p.latest_version), iso(p.updated_at) or ""]
                    for p in page.items]  # fmt: skip
            print(table(rows, ["ID", "NAME", "LATEST", "UPDATED (UTC)"]))
        else:
            return await _show(store, ws, args)
        return 0

    return _run(args, work)


async def _show(store: SqlStore, ws: str, args: argparse.Namespace) -> int:
    prompt = await store.get_prompt(ws, args.id)
    if prompt is None:
        print(f"imagegate: prompt {args.id!r} not found", file=sys.stderr)
        return 1
    if args.version:
        if args.version != "latest" and not args.version.isdigit():
            print("imagegate: --version: a number or 'latest'", file=sys.stderr)
            return 2
        wanted = None if args.version == "latest" else int(args.version)
        version = await store.get_prompt_version(ws, args.id, wanted)
        if version is None:
            print(f"imagegate: prompt {args.id!r} has no version {args.version}", file=sys.stderr)
            return 1
        print_json(version_view(version))
        return 0
    versions = await store.list_prompt_versions(ws, args.id)
    print_json(prompt_view(prompt, versions, versions[-1] if versions else None))
    return 0


def register(commands: CommandTable) -> None:
    """Add ``traces`` and ``prompts`` to the CLI's command table."""
    commands["traces"] = ("list recent traces as a table", _traces_args, traces_command)
    commands["prompts"] = ("manage stored prompts", _prompts_args, prompts_command)
