"""The console's plumbing: its per-app state (built on the first console request), the
security headers of every answer, and the wrapper that turns a page handler into an endpoint
(session → principal, CSRF on every POST, errors as pages — never a traceback).

Nothing here runs for API requests: the console's routes sit in one ``Mount`` after every
API route, and its state, templates and thumbnailer are made the first time someone opens it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..api.accesslog import PRINCIPAL_STATE
from ..api.auth import Authenticator
from ..api.control import settle, store_refusal
from ..errors import Forbidden, GatewayError, NotFound
from ..gateway import Gateway
from ..keyring import pepper
from ..store import Store, StoreError, StoreUnavailable
from ..store.browse import BrowseQueries
from ..workspaces import Principal
from .render import Templates
from .session import COOKIE, Session, Sessions
from .thumbs import Thumbnails

log = logging.getLogger("imagegate.console")
PREFIX = "/console"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
MAX_FORM_BYTES = 256 * 1024  # every console form but the playground's upload
UPLOAD_SLACK = 256 * 1024  # the playground's fields beside its image


class Console:
    """Per-app console state: sessions, templates, thumbnails."""

    def __init__(self, gateway: Gateway, auth: Authenticator) -> None:
        self.gateway = gateway
        self.auth = auth
        self.store: Store = gateway.control.store
        if not isinstance(self.store, BrowseQueries):  # pragma: no cover - SqlStore is one
            raise TypeError("the console needs a SQL store")
        self.browse: BrowseQueries = self.store
        self.sessions = Sessions(gateway.config, pepper(gateway.config), self.store)
        self.templates = Templates()
        self.thumbs = Thumbnails(gateway.output.store)


def console_of(request: Request) -> Console:
    state = request.app.state
    found: Console | None = getattr(state, "console", None)
    if found is None:
        found = state.console = Console(state.gateway, state.auth)
    return found


def secure(response: Response, *, cache: bool = False) -> Response:
    """The headers every console answer carries (HTML is never cached)."""
    response.headers.update(SECURITY_HEADERS)
    if not cache:
        response.headers["Cache-Control"] = "no-store"
    return response


def is_https(request: Request) -> bool:
    public = request.app.state.gateway.config.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


@dataclass
class Ctx:
    """One console request: who asks, their session, and what the templates need."""

    request: Request
    console: Console
    principal: Principal
    session: Session
    form: FormData | None = None
    cookie: str | None = None  # a session cookie to set with the answer (dev mode)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def workspace(self) -> str:
        return self.principal.workspace_id

    @property
    def gateway(self) -> Gateway:
        return self.console.gateway

    async def settle(self) -> None:
        """Let this process's finished requests reach the store before a read."""
        await settle(self.request, self.gateway.control)

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        values.setdefault("title", "")
        html = self.console.templates.render(
            template,
            csrf=self.console.sessions.csrf_token(self.session.nonce),
            who=self.principal,
            prefix=PREFIX,
            path=self.request.url.path,
            **values,
        )
        response = Response(html, status_code=status, media_type="text/html; charset=utf-8")
        return self.finish(response)

    def finish(self, response: Response, *, cache: bool = False) -> Response:
        if self.cookie is not None:
            set_cookie(self.request, response, COOKIE, self.cookie, self.console.sessions.ttl_s)
        return secure(response, cache=cache)

    def redirect(self, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303))


Handler = Callable[[Ctx], Awaitable[Response]]


async def resolve(request: Request, console: Console) -> tuple[Principal, Session, str | None]:
    """The caller of a console request, or ``SignIn`` when there is none."""
    sessions = console.sessions
    session = sessions.decode(request.cookies.get(COOKIE))
    if session is not None:
        principal = await sessions.principal(session)
        if principal is not None:
            return principal, session, None
    if sessions.dev:  # no keys configured (loopback only): the console opens directly
        principal = await console.auth.principal(None)
        session, cookie = sessions.issue(principal)
        return principal, session, cookie
    raise SignIn()


class SignIn(Exception):
    """No valid session: go to the sign-in page."""


def same_origin(request: Request) -> bool:
    """A POST's ``Origin`` (when the browser sends one) must be this console's."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.url.scheme}://{request.url.netloc}"


async def read_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> FormData:
    """The POSTed form, bounded: a declared length is required and capped."""
    declared = request.headers.get("content-length", "")
    if not declared.isascii() or not declared.isdigit() or int(declared) > max_bytes:
        raise GatewayError("the form is too large or has no length", status=413, code=None)
    return await request.form(max_files=1, max_fields=64, max_part_size=64 * 1024)


def page(
    handler: Handler, *, form_bytes: int | None = MAX_FORM_BYTES
) -> Callable[[Request], Awaitable[Response]]:
    """A console endpoint: resolve the session (else sign in), check CSRF on POST, render
    every failure as a page with its status. ``form_bytes`` None: the form may carry one
    upload (``uploads.max_file_bytes``)."""

    async def endpoint(request: Request) -> Response:
        console = console_of(request)
        ctx: Ctx | None = None
        try:
            principal, session, cookie = await resolve(request, console)
            ctx = Ctx(request, console, principal, session, cookie=cookie)
            setattr(request.state, PRINCIPAL_STATE, principal)  # the access log names it
            if request.method == "POST":
                if not same_origin(request):
                    raise Forbidden("cross-origin form refused")
                cap = form_bytes
                if cap is None:
                    cap = console.gateway.config.uploads.max_file_bytes + UPLOAD_SLACK
                ctx.form = await read_form(request, cap)
                if not console.sessions.check_csrf(session.nonce, ctx.form.get("csrf")):
                    raise Forbidden("the form's CSRF token is missing or stale; reload the page")
            return await handler(ctx)
        except SignIn:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return secure(RedirectResponse(f"{PREFIX}/sign-in?next={quote(target)}", 303))
        except StoreUnavailable:
            return error_page(request, console, ctx, 503, "The store is unavailable; try again.")
        except StoreError as exc:  # a taken id (409) or a refused value (400)
            refusal = store_refusal(exc)
            return error_page(request, console, ctx, refusal.status, refusal.message)
        except GatewayError as exc:
            return error_page(request, console, ctx, exc.status, exc.message)
        except Exception:
            log.exception("console error in %s %s", request.method, request.url.path)
            return error_page(request, console, ctx, 500, "Internal error; see the gateway log.")

    endpoint.__name__ = handler.__name__
    return endpoint


def error_page(
    request: Request, console: Console, ctx: Ctx | None, status: int, message: str
) -> Response:
    if ctx is not None:
        return ctx.render("error.html", status=status, message=message, status_code=status)
    html = console.templates.render(
        "error.html",
        message=message,
        status_code=status,
        who=None,
        prefix=PREFIX,
        csrf="",
        path=request.url.path,
        title="Error",
    )
    return secure(Response(html, status_code=status, media_type="text/html; charset=utf-8"))


def not_found(what: str) -> NotFound:
    return NotFound(f"{what} not found")
