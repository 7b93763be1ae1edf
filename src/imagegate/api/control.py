"""The control-plane API: traces, identities and threads (read), prompts (read and write),
usage per workspace.

Same bearer auth as the image endpoints; errors in orq's body. Every handler works in the
caller's workspace (``api.auth.caller``: the key's own, or for admins the one named by
``x-imagegate-workspace``) and passes it to the store first, so another workspace's object is
a 404 exactly like a missing one. Reads first let this process's queued writes land
(``ControlPlane.sync``), so a trace is readable as soon as its request returned; a database
that is down answers 503 ``service_unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Literal, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..control import ControlPlane
from ..errors import (
    Forbidden,
    GatewayError,
    InternalError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)
from ..store import Conflict, StoreError, StoreUnavailable, TraceQuery
from ..workspaces import Principal
from .auth import caller
from .body import read_json
from .params import (
    MAX_ID_CHARS,
    ascii_int,
    path_id,
    query_choice,
    query_int,
    query_text,
    query_time,
)
from .prompts import add_version, create_prompt
from .responses import JSONResponse, error_response
from .views import (
    identity_view,
    iso,
    page_view,
    prompt_view,
    thread_view,
    trace_view,
    usage_view,
    version_view,
)

log = logging.getLogger("imagegate.api")
Handler = Callable[[Request, ControlPlane, Principal], Awaitable[Response]]
MAX_LIMIT = 500
THREAD_TRACES = 1000
MAX_VERSION = 2**31 - 1  # prompt_versions.version is a 32-bit integer in PostgreSQL
SETTLE_S = 1.0
GROUP_BY = ("key", "identity", "model")


class ConflictError(GatewayError):
    """An id (or a key) that is already taken: orq's error body with status 409."""

    status = 409
    code = "conflict"
    type = "invalid_request_error"


def store_refusal(exc: StoreError) -> GatewayError:
    """What the store refused, as the caller's error: 409 for a taken id, else 400."""
    if isinstance(exc, Conflict):
        return ConflictError(exc.message, param=exc.param)
    return InvalidRequest(exc.message, param=exc.param)


def guarded(handler: Handler, *, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for ``handler``: the caller is resolved before anything else is
    read (a bad query from an unknown caller is a 401, not a 400), admin-only routes refuse
    members with 403, and every failure is orq's error body — never a traceback."""

    async def endpoint(request: Request) -> Response:
        try:
            principal = await caller(request)
            if admin and not principal.admin:
                raise Forbidden("this route needs an admin key")
            control: ControlPlane = request.app.state.gateway.control
            return await handler(request, control, principal)
        except StoreUnavailable:
            return error_response(ServiceUnavailable("the store is unavailable; try again"))
        except StoreError as exc:
            return error_response(store_refusal(exc))
        except GatewayError as exc:
            return error_response(exc)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return error_response(InternalError("internal error; see the gateway log"))

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def _limit(request: Request, default: int = 50) -> int:
    return query_int(request.query_params, "limit", lo=1, hi=MAX_LIMIT, default=default)


def _cursor(request: Request) -> str | None:
    """The last id of the previous page (an id, so bounded like one)."""
    return query_text(request.query_params, "cursor", MAX_ID_CHARS)


def _trace_query(request: Request) -> TraceQuery:
    q = request.query_params
    query = TraceQuery(limit=_limit(request), cursor=_cursor(request))
    for name in ("identity_id", "thread_id", "name", "model"):
        setattr(query, name, query_text(q, name))
    status = q.get("status")
    if status:
        code = ascii_int(status, 3)
        if status in ("success", "error"):
            query.succeeded = status == "success"
        elif code is not None and 100 <= code <= 599:
            query.status = code
        else:
            raise InvalidRequest("status: 'success', 'error' or an HTTP status", param="status")
    query.cache = query_choice(q, "cache", ("hit", "miss"), fold_case=True)
    query.since = query_time(q, "since")
    query.until = query_time(q, "until")
    return query


async def settle(request: Request, control: ControlPlane) -> None:
    """Let this process's finished requests reach the store before reading it (bounded).

    Traces are submitted once background image writes end, then batched by the writer.
    """
    drain = getattr(request.app.state.gateway.output, "drain", None)
    if drain is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(drain()), timeout=SETTLE_S)
    await control.sync(SETTLE_S)


def _prompt_id(request: Request) -> str:
    return path_id(request.path_params, "prompt_id", what="prompt")


# --- traces, identities, threads -------------------------------------------------------------
async def list_traces(request: Request, control: ControlPlane, who: Principal) -> Response:
    query = _trace_query(request)
    await settle(request, control)
    page = await control.store.list_traces(who.workspace_id, query)
    return JSONResponse(page_view([trace_view(t) for t in page.items], page.next_cursor))


async def get_trace(request: Request, control: ControlPlane, who: Principal) -> Response:
    trace_id = path_id(request.path_params, "trace_id", what="trace")
    await settle(request, control)
    trace = await control.store.get_trace(who.workspace_id, trace_id)
    if trace is None:
        raise NotFound(f"trace {trace_id!r} not found", param="id")
    return JSONResponse(trace_view(trace))


async def list_identities(request: Request, control: ControlPlane, who: Principal) -> Response:
    limit, cursor = _limit(request), _cursor(request)
    await settle(request, control)
    page = await control.store.list_identities(who.workspace_id, cursor, limit)
    return JSONResponse(page_view([identity_view(i) for i in page.items], page.next_cursor))


async def get_identity(request: Request, control: ControlPlane, who: Principal) -> Response:
    identity_id = path_id(request.path_params, "identity_id", what="identity")
    await settle(request, control)
    identity = await control.store.get_identity(who.workspace_id, identity_id)
    if identity is None:
        raise NotFound(f"identity {identity_id!r} not found", param="id")
    totals = await control.store.identity_totals(who.workspace_id, identity_id)
    return JSONResponse(identity_view(identity, totals))


async def get_thread(request: Request, control: ControlPlane, who: Principal) -> Response:
    thread_id = path_id(request.path_params, "thread_id", what="thread")
    await settle(request, control)
    thread = await control.store.get_thread(who.workspace_id, thread_id)
    if thread is None:
        raise NotFound(f"thread {thread_id!r} not found", param="id")
    traces = await control.store.thread_traces(who.workspace_id, thread_id, THREAD_TRACES)
    return JSONResponse(thread_view(thread, traces))


# --- prompts -------------------------------------------------------------------------------
async def post_prompt(request: Request, control: ControlPlane, who: Principal) -> Response:
    prompt, version = await create_prompt(control.store, who.workspace_id, await read_json(request))
    control.prompts.invalidate(who.workspace_id, prompt.id)
    return JSONResponse(prompt_view(prompt, latest=version), status_code=201)


async def list_prompts(request: Request, control: ControlPlane, who: Principal) -> Response:
    limit, cursor = _limit(request), _cursor(request)
    page = await control.store.list_prompts(who.workspace_id, cursor, limit)
    return JSONResponse(page_view([prompt_view(p) for p in page.items], page.next_cursor))


async def get_prompt(request: Request, control: ControlPlane, who: Principal) -> Response:
    prompt_id = _prompt_id(request)
    prompt = await control.store.get_prompt(who.workspace_id, prompt_id)
    if prompt is None:
        raise NotFound(f"prompt {prompt_id!r} not found", param="id")
    versions = await control.store.list_prompt_versions(who.workspace_id, prompt_id)
    latest = versions[-1] if versions else None
    return JSONResponse(prompt_view(prompt, versions, latest))


async def post_version(request: Request, control: ControlPlane, who: Principal) -> Response:
    prompt_id = _prompt_id(request)
    version = await add_version(
        control.store, who.workspace_id, prompt_id, await read_json(request)
    )
    if version is None:
        raise NotFound(f"prompt {prompt_id!r} not found", param="id")
    control.prompts.invalidate(who.workspace_id, prompt_id)
    return JSONResponse(version_view(version), status_code=201)


async def list_versions(request: Request, control: ControlPlane, who: Principal) -> Response:
    prompt_id = _prompt_id(request)
    if await control.store.get_prompt(who.workspace_id, prompt_id) is None:
        raise NotFound(f"prompt {prompt_id!r} not found", param="id")
    versions = await control.store.list_prompt_versions(who.workspace_id, prompt_id)
    return JSONResponse(page_view([version_view(v) for v in versions], None))


async def get_version(request: Request, control: ControlPlane, who: Principal) -> Response:
    prompt_id, raw = _prompt_id(request), request.path_params["version"]
    if raw != "latest" and not (raw.isascii() and raw.isdigit()):
        raise InvalidRequest("version: 'latest' or a version number", param="version")
    number = ascii_int(raw, 10)  # None for "latest", and for more digits than any version has
    version = None
    if raw == "latest" or (number is not None and 1 <= number <= MAX_VERSION):
        version = await control.store.get_prompt_version(who.workspace_id, prompt_id, number)
    if version is None:
        raise NotFound(f"prompt {prompt_id!r} has no version {raw[:32]}", param="version")
    return JSONResponse(version_view(version))


# --- usage ---------------------------------------------------------------------------------
async def get_usage(request: Request, control: ControlPlane, who: Principal) -> Response:
    """Requests, images and cost of the caller's workspace, grouped by key, identity or model."""
    q = request.query_params
    group_by = query_choice(q, "group_by", GROUP_BY) or "key"
    since, until = query_time(q, "from"), query_time(q, "to")
    await settle(request, control)
    rows = await control.store.usage(
        who.workspace_id, cast(Literal["key", "identity", "model"], group_by), since, until
    )
    return JSONResponse(
        {
            "object": "list",
            "workspace": who.workspace_id,
            "group_by": group_by,
            "from": iso(since),
            "to": iso(until),
            "data": [usage_view(r) for r in rows],
        }
    )


def control_routes() -> list[BaseRoute]:
    """Appended to the app's routes by ``api.app.routes``."""
    table: list[tuple[str, Handler, str]] = [
        ("/v2/traces", list_traces, "GET"),
        ("/v2/traces/{trace_id}", get_trace, "GET"),
        ("/v2/identities", list_identities, "GET"),
        ("/v2/identities/{identity_id}", get_identity, "GET"),
        ("/v2/threads/{thread_id}", get_thread, "GET"),
        ("/v2/prompts", post_prompt, "POST"),
        ("/v2/prompts", list_prompts, "GET"),
        ("/v2/prompts/{prompt_id}", get_prompt, "GET"),
        ("/v2/prompts/{prompt_id}/versions", post_version, "POST"),
        ("/v2/prompts/{prompt_id}/versions", list_versions, "GET"),
        ("/v2/prompts/{prompt_id}/versions/{version}", get_version, "GET"),
        ("/v2/usage", get_usage, "GET"),
    ]
    return [Route(path, guarded(handler), methods=[method]) for path, handler, method in table]
