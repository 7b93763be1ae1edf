"""``imagegate traces`` and ``imagegate prompts …``: the store from the command line.

They open the configured store directly (no running server needed) and print a table or JSON.
Every command takes ``--config`` (like ``serve``) and works in one workspace (``--workspace``,
default ``default``). Bad input is one line on standard error and exit status 2. A prompt is
checked exactly as ``POST /v2/prompts`` checks it (``api/prompts.py``).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import orjson

from ..api.views import iso, prompt_view, trace_view, version_view
from ..config import load_config
from ..errors import GatewayError
from ..store import Store, TraceQuery, TraceRecord
from .common import (
    BadInput,
    CommandTable,
    Work,
    checks_input,
    money,
    print_json,
    run_store,
    store_args,
    table,
    workspace_id,
)


def _run(args: argparse.Namespace, work: Work) -> int:
    return run_store(load_config(args.config), work)


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


async def list_traces(store: Store, ws: str, query: TraceQuery, code: str | None) -> list[Any]:
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
    query = TraceQuery(
        limit=max(1, min(args.limit, 1000)),
        identity_id=args.identity,
        thread_id=args.thread,
        name=args.name,
        model=args.model,
    )
    code = status_filter(query, args.status)

    async def work(store: Store) -> int:
        items = await list_traces(store, ws, query, code)
        if args.json:
            print_json([trace_view(t) for t in items])
            return 0
        rows = [
            [
                (iso(t.started_at) or "")[:19].replace("T", " "),
                t.id,
                t.name,
                str(t.status or "-"),
                t.error_code or "-",
                t.requested_model or "-",
                t.served_model or "-",
                str(t.n or "-"),
                t.size or "-",
                t.cache or "-",
                money(t.cost_usd),
                "-" if t.duration_ms is None else f"{t.duration_ms:.0f}",
                t.identity_id or "-",
            ]
            for t in items
        ]
        headers = [
            "TIME (UTC)",
            "ID",
            "NAME",
            "STATUS",
            "ERROR",
            "MODEL",
            "SERVED",
            "N",
            "SIZE",
            "CACHE",
            "COST",
            "MS",
            "IDENTITY",
        ]
        print(table(rows, headers))
        return 0

    return _run(args, work)


# --- imagegate prompts -------------------------------------------------------------------------
def _version_args(p: argparse.ArgumentParser, template_required: bool) -> None:
    p.add_argument(
        "--template",
        required=template_required,
        help="prompt text; {{input}} stands for the caller's prompt",
    )
    p.add_argument("--model", help="provider/model that replaces the request's model")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="default parameter, e.g. size=1024x1024 (repeatable)",
    )


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
    from ..api.prompts import add_version, create_prompt

    ws = workspace_id(args.workspace)

    async def work(store: Store) -> int:
        if args.action == "create":
            body = {
                "id": args.id,
                "name": args.name,
                "description": args.description,
                "template": args.template,
                "model": args.model,
                "parameters": _params(args.param),
            }
            prompt, version = await create_prompt(store, ws, {k: v for k, v in body.items() if v})
            print_json(prompt_view(prompt, latest=version))
        elif args.action == "add-version":
            raw = {
                "template": args.template,
                "model": args.model,
                "parameters": _params(args.param),
            }
            version = await add_version(store, ws, args.id, {k: v for k, v in raw.items() if v})
            if version is None:
                print(f"imagegate: prompt {args.id!r} not found", file=sys.stderr)
                return 1
            print_json(version_view(version))
        elif args.action == "list":
            page = await store.list_prompts(ws, None, 1000)
            rows = [
                [p.id, p.name or "-", str(p.latest_version), iso(p.updated_at) or ""]
                for p in page.items
            ]
            print(table(rows, ["ID", "NAME", "LATEST", "UPDATED (UTC)"]))
        else:
            return await _show(store, ws, args)
        return 0

    return _run(args, work)


async def _show(store: Store, ws: str, args: argparse.Namespace) -> int:
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
