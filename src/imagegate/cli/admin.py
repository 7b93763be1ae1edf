"""``imagegate keys …``, ``imagegate workspaces …`` and ``imagegate usage``: the operator's tools.

Like ``traces`` and ``prompts`` they open the configured store directly. ``keys create`` is the
only place a managed key exists in clear: it is printed once, alone on the last line of
standard output (so ``imagegate keys create … | tail -1`` captures it), and only its hash
under the deployment's pepper (``keyring.pepper``) is stored.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..api.views import iso, key_view, parse_time, usage_view, workspace_view
from ..config import load_config
from ..store import Conflict, Store
from ..workspaces import (
    Budget,
    RateLimits,
    Workspace,
    mint_key,
)
from .common import (
    BadInput,
    CommandTable,
    checks_input,
    config_arg,
    money,
    print_json,
    run_store,
    store_args,
    table,
    workspace_arg,
    workspace_id,
)


# --- parsing -----------------------------------------------------------------------------------
def _count(value: str | None, flag: str) -> int | None:
    """A non-negative whole number of requests or images, or None (not given)."""
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise BadInput(f"{flag} {value[:40]!r}: a whole number, 0 to 999999999")
    return int(text)


def _budget(value: str | None, flag: str) -> Budget | None:
    if value is None:
        return None
    try:
        return Budget.parse(value)
    except ValueError as exc:
        raise BadInput(f"{flag} {value[:40]!r}: {exc} (e.g. 50/month, 5/day)") from None


def _limits(args: argparse.Namespace, prefix: str = "") -> RateLimits:
    dash = prefix.replace("_", "-")
    return RateLimits(
        rpm=_count(getattr(args, f"{prefix}rpm"), f"--{dash}rpm"),
        images_per_min=_count(getattr(args, f"{prefix}images_per_min"), f"--{dash}images-per-min"),
        concurrent=_count(getattr(args, f"{prefix}concurrent"), f"--{dash}concurrent"),
    )


def _limit_args(p: argparse.ArgumentParser, prefix: str = "", who: str = "each key") -> None:
    p.add_argument(f"--{prefix}rpm", metavar="N", help=f"requests per minute for {who}")
    p.add_argument(f"--{prefix}images-per-min", metavar="N", help=f"images per minute for {who}")
    p.add_argument(f"--{prefix}concurrent", metavar="N", help=f"requests in flight for {who}")


def _limits_text(limits: RateLimits, budget: Budget | None = None) -> str:
    parts = [f"{name}={value}" for name, value in limits.as_dict().items() if value is not None]
    if budget is not None:
        parts.append(f"budget=${budget.usd:g}/{budget.period}")
    return " ".join(parts) or "-"


# --- imagegate keys ----------------------------------------------------------------------------
def _keys_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (or IMAGEGATE_CONFIG)")
    sub = p.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="make a key (printed once, on the last line)")
    config_arg(create, nested=True)
    workspace_arg(create)
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--role", choices=("admin", "member"), default="member")
    _limit_args(create, who="this key")
    create.add_argument("--budget-usd", metavar="USD[/day|/month]", help="e.g. 50/month")
    listing = sub.add_parser("list", help="list keys (never the keys themselves)")
    config_arg(listing, nested=True)
    listing.add_argument("--workspace", help="only this workspace (default: all)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    config_arg(revoke, nested=True)
    revoke.add_argument("key_id")


@checks_input
def keys_command(args: argparse.Namespace) -> int:
    if args.action == "create":
        return _create_key(args)
    if args.action == "list":
        return _list_keys(args)
    return _revoke_key(args)


def _create_key(args: argparse.Namespace) -> int:
    from ..keyring import pepper

    ws = workspace_id(args.workspace)
    limits, budget = _limits(args), _budget(args.budget_usd, "--budget-usd")
    name = args.name.strip()
    if not name or len(name) > 256:
        raise BadInput("--name: 1 to 256 characters")
    config = load_config(args.config)
    now = time.time()
    key, record = mint_key(
        pepper(config), ws, name, args.role, now=now, limits=limits, budget=budget
    )

    async def work(store: Store) -> int:
        await store.ensure_workspace(ws, now)
        made = await store.create_key(record)
        print(f"created key {made.id} ({made.prefix}\u2026) in workspace {ws}")
        print(f"name: {made.name}  role: {made.role}  limits: {_limits_text(limits, budget)}")
        print("the key is shown once, now; keep it somewhere safe:")
        print(key)
        return 0

    return run_store(config, work)


def _list_keys(args: argparse.Namespace) -> int:
    ws = None if args.workspace is None else workspace_id(args.workspace)

    async def work(store: Store) -> int:
        keys = await store.list_keys(ws)
        if args.json:
            print_json([key_view(k) for k in keys])
            return 0
        rows = [
            [
                k.id,
                k.workspace_id,
                k.name,
                k.role,
                k.prefix + "\u2026",
                (iso(k.created_at) or "")[:19].replace("T", " "),
                (iso(k.revoked_at) or "-")[:19].replace("T", " "),
                _limits_text(k.limits, k.budget),
            ]
            for k in keys
        ]
        print(
            table(
                rows,
                [
                    "ID",
                    "WORKSPACE",
                    "NAME",
                    "ROLE",
                    "PREFIX",
                    "CREATED (UTC)",
                    "REVOKED (UTC)",
                    "LIMITS",
                ],
            )
        )
        return 0

    return run_store(load_config(args.config), work)


def _revoke_key(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        key = await store.revoke_key(args.key_id, time.time())
        if key is None:
            print(f"imagegate: key {args.key_id[:80]!r} not found", file=sys.stderr)
            return 1
        print(f"revoked key {key.id} ({key.name}) in workspace {key.workspace_id}")
        return 0

    return run_store(load_config(args.config), work)


# --- imagegate workspaces ----------------------------------------------------------------------
def _workspaces_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (or IMAGEGATE_CONFIG)")
    sub = p.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a workspace with its limits and budgets")
    config_arg(create, nested=True)
    create.add_argument("id")
    create.add_argument("--name")
    _limit_args(create, who="each key (default)")
    _limit_args(create, "identity-", who="each identity")
    for flag, who in (
        ("budget-usd", "the whole workspace"),
        ("key-budget-usd", "each key"),
        ("identity-budget-usd", "each identity"),
    ):
        create.add_argument(f"--{flag}", metavar="USD[/day|/month]", help=f"for {who}")
    create.add_argument(
        "--no-unpriced",
        action="store_true",
        help="refuse requests whose price is unknown when a budget applies",
    )
    listing = sub.add_parser("list", help="list workspaces")
    config_arg(listing, nested=True)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")


@checks_input
def workspaces_command(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list_workspaces(args)
    ws = Workspace(
        id=workspace_id(args.id, "workspace id"),
        name=args.name,
        key_limits=_limits(args),
        identity_limits=_limits(args, "identity_"),
        budget=_budget(args.budget_usd, "--budget-usd"),
        key_budget=_budget(args.key_budget_usd, "--key-budget-usd"),
        identity_budget=_budget(args.identity_budget_usd, "--identity-budget-usd"),
        allow_unpriced=not args.no_unpriced,
        created_at=time.time(),
    )

    async def work(store: Store) -> int:
        try:
            made = await store.create_workspace(ws)
        except Conflict:
            print(f"imagegate: workspace {ws.id!r} already exists", file=sys.stderr)
            return 1
        print_json(workspace_view(made))
        return 0

    return run_store(load_config(args.config), work)


def _list_workspaces(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        found = await store.list_workspaces()
        if args.json:
            print_json([workspace_view(w) for w in found])
            return 0
        rows = [
            [
                w.id,
                w.name or "-",
                _limits_text(w.key_limits, w.key_budget),
                _limits_text(w.identity_limits, w.identity_budget),
                _limits_text(RateLimits(), w.budget),
                "yes" if w.allow_unpriced else "no",
            ]
            for w in found
        ]
        print(table(rows, ["ID", "NAME", "EACH KEY", "EACH IDENTITY", "WORKSPACE", "UNPRICED"]))
        return 0

    return run_store(load_config(args.config), work)


# --- imagegate usage ---------------------------------------------------------------------------
def _usage_args(p: argparse.ArgumentParser) -> None:
    store_args(p)
    p.add_argument("--group-by", choices=("key", "identity", "model"), default="key")
    p.add_argument("--from", dest="since", metavar="TIME", help="ISO 8601 or unix seconds")
    p.add_argument("--to", dest="until", metavar="TIME", help="exclusive; ISO 8601 or unix seconds")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _time(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except (ValueError, OverflowError, OSError):
        raise BadInput(f"{flag} {value[:40]!r}: ISO 8601 or unix seconds") from None


@checks_input
def usage_command(args: argparse.Namespace) -> int:
    ws = workspace_id(args.workspace)
    since, until = _time(args.since, "--from"), _time(args.until, "--to")

    async def work(store: Store) -> int:
        found = await store.usage(ws, args.group_by, since, until)
        if args.json:
            print_json([usage_view(u) for u in found])
            return 0
        rows = [
            [
                u.group or "-",
                str(u.requests),
                str(u.images),
                money(u.cost_usd),
                str(u.unpriced),
                str(u.errors),
                str(u.cache_hits),
            ]
            for u in found
        ]
        print(
            table(
                rows,
                [
                    args.group_by.upper(),
                    "REQUESTS",
                    "IMAGES",
                    "COST",
                    "UNPRICED",
                    "ERRORS",
                    "CACHE HITS",
                ],
            )
        )
        return 0

    return run_store(load_config(args.config), work)


def register(commands: CommandTable) -> None:
    """Add ``keys``, ``workspaces`` and ``usage`` to the CLI's command table."""
    commands["keys"] = ("manage API keys stored per workspace", _keys_args, keys_command)
    commands["workspaces"] = ("manage workspaces", _workspaces_args, workspaces_command)
    commands["usage"] = (
        "requests, images and cost per key, identity or model",
        _usage_args,
        usage_command,
    )
