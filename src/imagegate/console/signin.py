"""Signing in and out, and switching workspace (admins).

The sign-in form has no session yet, so its CSRF token is tied to a short-lived signed cookie
of its own (``Sessions.new_pre_cookie``). The key is checked exactly as the API checks a
bearer key (``Authenticator.principal``) and is never stored: the session names its id.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..api.auth import acting
from ..errors import Forbidden, GatewayError, NotFound
from ..workspaces import valid_workspace_id
from .session import COOKIE, PRE_COOKIE, PRE_TTL_S
from .web import (
    PREFIX,
    Ctx,
    console_of,
    read_form,
    same_origin,
    secure,
    set_cookie,
)

MAX_KEY_CHARS = 256


def safe_next(target: object) -> str:
    """Only a path inside the console (never another host) may follow a sign-in."""
    if isinstance(target, str) and target.startswith(PREFIX + "/") and "//" not in target:
        if target.isascii() and "\\" not in target and len(target) <= 2048:
            return target
    return f"{PREFIX}/traces"


def _page(request: Request, status: int, error: str | None = None) -> Response:
    console = console_of(request)
    nonce, pre = console.sessions.new_pre_cookie()
    html = console.templates.render(
        "sign_in.html",
        title="Sign in",
        who=None,
        prefix=PREFIX,
        path=request.url.path,
        csrf=console.sessions.csrf_token(nonce),
        error=error,
        next=safe_next(request.query_params.get("next")),
        dev=console.sessions.dev,
    )
    response = Response(html, status_code=status, media_type="text/html; charset=utf-8")
    set_cookie(request, response, PRE_COOKIE, pre, PRE_TTL_S)
    return secure(response)


async def get_sign_in(request: Request) -> Response:
    return _page(request, 200)


async def post_sign_in(request: Request) -> Response:
    console = console_of(request)
    sessions = console.sessions
    try:
        form = await read_form(request)
    except GatewayError as exc:
        return _page(request, exc.status, exc.message)
    nonce = sessions.pre_nonce(request.cookies.get(PRE_COOKIE))
    if (
        not same_origin(request)
        or nonce is None
        or not sessions.check_csrf(nonce, form.get("csrf"))
    ):
        return _page(request, 403, "The form expired or came from elsewhere; try again.")
    key = form.get("key")
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_CHARS:
        return _page(request, 400, "Enter an API key.")
    try:
        principal = await console.auth.principal(f"Bearer {key.strip()}")
    except GatewayError as exc:
        status = exc.status if exc.status >= 500 else 401
        return _page(request, status, "That key is not valid." if status == 401 else exc.message)
    _, cookie = sessions.issue(principal)
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    set_cookie(request, response, COOKIE, cookie, sessions.ttl_s)
    response.delete_cookie(PRE_COOKIE, path=PREFIX)
    return secure(response)


async def post_sign_out(ctx: Ctx) -> Response:
    response = secure(RedirectResponse(f"{PREFIX}/sign-in", status_code=303))
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


async def post_workspace(ctx: Ctx) -> Response:
    """An admin acts in another workspace (the session remembers which)."""
    assert ctx.form is not None
    wanted = ctx.form.get("workspace")
    if not isinstance(wanted, str) or not valid_workspace_id(wanted.strip()):
        raise NotFound("no such workspace")
    wanted = wanted.strip()
    if not ctx.principal.admin:
        raise Forbidden("only an admin key may switch workspace")
    acting(ctx.principal, wanted)
    if await ctx.console.store.get_workspace(wanted) is None:
        raise NotFound(f"no workspace {wanted!r}")
    session = dataclasses.replace(ctx.session, workspace=wanted)
    ctx.cookie = ctx.console.sessions.encode(session)
    return ctx.redirect(f"{PREFIX}/traces?switched={quote(wanted)}")
