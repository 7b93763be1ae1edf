"""``imagegate jobs list|show|cancel``: the job queue from the command line.

Like the other store commands they open the configured store directly (no running server
needed), in one workspace (``--workspace``). ``show`` prints the job with its images as blob
keys (the API signs URLs for them); ``cancel`` marks it cancelled — a replica running it
stops at its next lease renewal — and removes its uploads from the blob store.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..blobs import make_store
from ..config import load_config
from ..jobs.inputs import delete_inputs
from ..jobs.views import iso, summary_view, webhook_view
from ..store import Store
from ..store.jobrecords import JOB_STATUSES
from .common import (
    BadInput,
    CommandTable,
    checks_input,
    print_json,
    run_store,
    store_args,
    table,
    workspace_id,
)

MAX_LIST = 1000


def _args(p: argparse.ArgumentParser) -> None:
    store_args(p)
    sub = p.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--status", choices=JOB_STATUSES, help="only jobs in this state")
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show = sub.add_parser("show", help="show one job (JSON)")
    show.add_argument("id")
    cancel = sub.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("id")
    for action in (listing, show, cancel):
        store_args(action, nested=True)


@checks_input
def jobs_command(args: argparse.Namespace) -> int:
    ws = workspace_id(args.workspace)
    config = load_config(args.config)
    if args.action == "list" and not 1 <= args.limit <= MAX_LIST:
        raise BadInput(f"--limit: 1 to {MAX_LIST}")

    async def work(store: Store) -> int:
        if args.action == "list":
            page = await store.list_jobs(ws, args.status, None, args.limit)
            if args.json:
                print_json([summary_view(j) for j in page.items])
                return 0
            rows = [
                [
                    (iso(j.created_at) or "")[:19].replace("T", " "),
                    j.id,
                    j.status,
                    j.operation,
                    str(j.body.get("model") or "-"),
                    str(j.runs),
                    str(j.http_status or "-"),
                ]
                for j in page.items
            ]
            print(
                table(rows, ["CREATED (UTC)", "ID", "STATUS", "OPERATION", "MODEL", "RUNS", "HTTP"])
            )
            return 0
        if args.action == "show":
            job = await store.get_job(ws, args.id)
            if job is None:
                print(f"imagegate: job {args.id!r} not found", file=sys.stderr)
                return 1
            delivery = await store.get_delivery(ws, job.id) if job.webhook_url else None
            view = summary_view(job)
            view.update(result=job.result, error=job.error, webhook=webhook_view(job, delivery))
            print_json(view)
            return 0
        found = await store.cancel_job(ws, args.id, time.time())
        if found is None:
            print(f"imagegate: job {args.id!r} not found", file=sys.stderr)
            return 1
        job, cancelled = found
        if not cancelled:
            print(f"imagegate: job {job.id} already {job.status}", file=sys.stderr)
            return 1
        blobs = make_store(config.storage)
        try:
            await delete_inputs(blobs, job.inputs)
        finally:
            await blobs.close()
        print_json(summary_view(job))
        return 0

    return run_store(config, work)


def register(commands: CommandTable) -> None:
    """Add ``jobs`` to the CLI's command table."""
    commands["jobs"] = ("list, show or cancel async image jobs", _args, jobs_command)
