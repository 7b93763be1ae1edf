"""Identities (with their totals and image grid) and threads (their images in order)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from ..api.params import MAX_ID_CHARS, clean_text, parse_time, query_text
from ..store.browse import TraceFilter
from .traces import row
from .web import Ctx, not_found

PAGE = 50
GRID = 48  # images of an identity shown at once (their traces page further)
THREAD_TRACES = 500


def _path_id(ctx: Ctx, name: str, what: str) -> str:
    raw = ctx.request.path_params[name]
    if not raw or not clean_text(raw, MAX_ID_CHARS):
        raise not_found(what)
    return str(raw)


async def list_identities(ctx: Ctx) -> Response:
    cursor = query_text(ctx.request.query_params, "cursor", MAX_ID_CHARS)
    await ctx.settle()
    page = await ctx.console.store.list_identities(ctx.workspace, cursor, PAGE)
    totals = await ctx.console.browse.identity_totals_many(
        ctx.workspace, [i.id for i in page.items]
    )
    older = f"?{urlencode({'cursor': page.next_cursor})}" if page.next_cursor else None
    return ctx.render(
        "identities.html",
        title="Identities",
        identities=page.items,
        totals=totals,
        older=older,
    )


async def get_identity(ctx: Ctx) -> Response:
    identity_id = _path_id(ctx, "identity_id", "identity")
    await ctx.settle()
    identity = await ctx.console.store.get_identity(ctx.workspace, identity_id)
    if identity is None:
        raise not_found("identity")
    totals = (await ctx.console.browse.identity_totals_many(ctx.workspace, [identity_id])).get(
        identity_id
    )
    page = await ctx.console.browse.browse_traces(
        ctx.workspace, TraceFilter(identity_id=identity_id, limit=GRID)
    )
    return ctx.render(
        "identity.html",
        title=f"Identity {identity_id}",
        identity=identity,
        totals=totals,
        rows=[row(t) for t in page.items],
        more=page.next_cursor is not None,
    )


def _thread_cursor(text: str | None) -> tuple[float, str] | None:
    """``<last_seen unix s>~<id>`` of the previous page's last thread."""
    if not text:
        return None
    seen, sep, thread_id = text.partition("~")
    when = parse_time(seen)
    if not sep or when is None or not thread_id:
        return None
    return when, thread_id


async def list_threads(ctx: Ctx) -> Response:
    cursor = _thread_cursor(query_text(ctx.request.query_params, "cursor", MAX_ID_CHARS + 40))
    await ctx.settle()
    threads, nxt = await ctx.console.browse.list_threads(ctx.workspace, cursor, PAGE)
    counts = await ctx.console.browse.thread_counts(ctx.workspace, [t.id for t in threads])
    older = f"?{urlencode({'cursor': f'{nxt[0]!r}~{nxt[1]}'})}" if nxt else None
    return ctx.render("threads.html", title="Threads", threads=threads, counts=counts, older=older)


async def get_thread(ctx: Ctx) -> Response:
    thread_id = _path_id(ctx, "thread_id", "thread")
    await ctx.settle()
    thread = await ctx.console.store.get_thread(ctx.workspace, thread_id)
    if thread is None:
        raise not_found("thread")
    traces = await ctx.console.store.thread_traces(ctx.workspace, thread_id, THREAD_TRACES)
    return ctx.render(
        "thread.html",
        title=f"Thread {thread_id}",
        thread=thread,
        rows=[row(t) for t in traces],
    )
