"""The Starlette app: one handler per operation mounted under every prefix orq has used."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from ..config import Config, load_config
from ..console import console_routes
from ..errors import Forbidden, GatewayError, InternalError, MethodNotAllowed, NotFound
from ..gateway import Gateway
from ..keyring import pepper
from ..request import OPERATIONS
from ..telemetry import otel
from ..telemetry.trace import new_trace_id
from .accesslog import AccessLogMiddleware
from .admin import admin_routes
from .auth import Authenticator, caller
from .control import control_routes
from .drain import DrainGuard
from .files import get_file
from .health import health_routes
from .idempotency import make_idempotency
from .images import make_endpoint
from .jobs import job_routes
from .lifespan import Lifespan
from .models_list import model_routes
from .openapi import PREFIXES, build_openapi, route_paths
from .responses import JSONResponse, error_response
from .traceid import TraceIdHeader

log = logging.getLogger("imagegate.api")
GC_YOUNG_THRESHOLD = 7000  # Python's default is 700


async def health(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return JSONResponse({"status": "ok", "providers": gateway.registry.names()})


async def metrics(request: Request) -> Response:
    """Prometheus text for the whole process (every worker): admin keys only."""
    try:
        if not (await caller(request)).admin:
            raise Forbidden("/metrics needs an admin key")
    except GatewayError as exc:
        return error_response(exc)
    text = request.app.state.lifespan.metrics_text()  # summed over workers (lifespan.py)
    return Response(text, media_type="text/plain; version=0.0.4")


async def openapi(request: Request) -> Response:
    spec = request.app.state.openapi
    if spec is None:
        spec = request.app.state.openapi = build_openapi(route_paths(request.app.routes))
    return JSONResponse(spec)


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (one route per method here, so Starlette's
    own ``Allow`` names only the last route it tried)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    err: GatewayError
    if exc.status_code == 405:
        err = MethodNotAllowed(
            f"method {request.method} not allowed on {request.url.path}",
            headers={"Allow": allowed_methods(request)},
        )
    elif exc.status_code == 404:
        err = NotFound(f"no route for {request.method} {request.url.path}")
    else:
        err = GatewayError(str(exc.detail), status=exc.status_code, code=None)
    return error_response(err, new_trace_id())  # x-orq-trace-id on every error, 404/405 too


async def unhandled(request: Request, exc: Exception) -> Response:
    """The last resort: orq's error body and a trace id, the traceback in the log only."""
    trace_id = new_trace_id()
    log.error("unhandled error in trace %s", trace_id, exc_info=exc)
    return error_response(InternalError("internal error; see the gateway log"), trace_id)


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for operation in OPERATIONS:
        endpoint = make_endpoint(operation)
        for prefix in PREFIXES:
            out.append(Route(f"{prefix}/images/{operation}", endpoint, methods=["POST"]))
    out.extend(model_routes(PREFIXES))  # GET {prefix}/models[/{id}], OpenAI's shape
    out.append(Route("/health", health, methods=["GET"]))
    out.extend(health_routes())  # /health/live, /health/ready (api/health.py)
    out.append(Route("/openapi.json", openapi, methods=["GET"]))
    out.append(Route("/metrics", metrics, methods=["GET"]))
    out.extend(control_routes())
    out.extend(admin_routes())
    out.extend(job_routes())
    out.append(Route("/v2/files/{key}", get_file, methods=["GET"]))
    return out


def create_app(config: Config | None = None, *, gateway: Gateway | None = None) -> Starlette:
    """Build the ASGI app. With no arguments the config comes from file + env."""
    config = config or (gateway.config if gateway else load_config())
    gw = gateway or Gateway(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        gw.jobs.start()  # this replica's share of the job queue and the webhook outbox
        # Everything alive now (modules, config, pools) lives as long as the process: keep it
        # out of the collector's passes, which otherwise rescan it again and again; and let
        # the young generation grow past one request's worth of objects before a pass (each
        # request allocates a few thousand). Measured: -10 to -15 % CPU per small request.
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
        life.start(lambda: gw.metrics_text() + idempotency.metrics_text())
        try:
            yield
        finally:
            await life.stop()  # cancelled requests' traces submitted, shutdown hooks run
            await idempotency.close()  # calls left running for departed clients, first
            await gw.close()

    app = Starlette(
        routes=routes() + console_routes(config),  # the console last: API routes match first
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: unhandled},
    )
    life = Lifespan(config, gw)  # ``app.state.lifespan.on_shutdown(hook)``: lifespan.py
    app.add_middleware(DrainGuard, inflight=life.inflight)  # innermost: answers 503 on drain
    if otel.ACTIVE is not None:  # a caller's W3C traceparent parents the request's spans
        app.add_middleware(otel.IncomingTraceContext, tracing=otel.ACTIVE)
    app.add_middleware(TraceIdHeader)  # add any access log after this line: it goes outside
    if config.access_log:  # outermost: it sees every response, the trace id header included
        app.add_middleware(AccessLogMiddleware, log_format=config.log_format)
    app.state.gateway = gw
    app.state.lifespan = life
    app.state.readiness = life.readiness
    app.state.idempotency = idempotency = make_idempotency(config, gw)
    app.state.auth = Authenticator(config.api_keys, store=gw.control.store, pepper=pepper(config))
    app.state.openapi = None
    return app


def app_factory() -> Any:
    """uvicorn ``--factory`` entry point (used by ``imagegate serve``)."""
    return create_app()
