"""``GET /v1/models`` and ``GET /v1/models/{id}`` (under every image-route prefix), in the shape
OpenAI's API answers (https://platform.openai.com/docs/api-reference/models), so
``client.models.list()`` and ``client.models.retrieve(...)`` work against the gateway.

Ids hold ``/`` (``openai/dall-e-3``, ``fal/fal-ai/flux/dev``): the route takes the rest of the
path, and the SDK's percent-encoded ``%2F`` arrives decoded. The same keys as the image routes
are accepted. Workspaces have no model allow-list yet, so every caller sees every model the
gateway serves (docs/openai-compatibility.md).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ..catalog import Catalog
from ..errors import GatewayError, NotFound
from ..gateway import Gateway
from ..telemetry.trace import new_trace_id
from .auth import caller
from .responses import JSONResponse, error_response

MAX_ID_CHARS = 1024  # longer than any name a config may hold (limits.max_name_chars is less)


def catalog(request: Request) -> Catalog:
    """The app's catalog, built on first use (config and providers are fixed while it runs)."""
    found: Catalog | None = getattr(request.app.state, "catalog", None)
    if found is None:
        gateway: Gateway = request.app.state.gateway
        found = request.app.state.catalog = Catalog.build(gateway.config, gateway.registry)
    return found


async def list_models(request: Request) -> Response:
    """List the aliases and provider models this gateway serves."""
    try:
        await caller(request)
    except GatewayError as exc:
        return error_response(exc, new_trace_id())
    return JSONResponse({"object": "list", "data": catalog(request).list()})


async def retrieve_model(request: Request) -> Response:
    """One model or alias by id (bare names resolve through the default provider)."""
    trace_id = new_trace_id()
    try:
        await caller(request)
        model_id: str = request.path_params["model"]
        found = catalog(request).find(model_id) if len(model_id) <= MAX_ID_CHARS else None
        if found is None:
            shown = model_id[:80] + ("…" if len(model_id) > 80 else "")
            raise NotFound(
                f"The model '{shown}' does not exist or is not served by this gateway",
                param="model",
                code="model_not_found",
            )
    except GatewayError as exc:
        return error_response(exc, trace_id)
    return JSONResponse(found)


def model_routes(prefixes: tuple[str, ...]) -> list[BaseRoute]:
    """The list route, and a mount for the ids under it: ``{model}`` takes the rest of the
    path there, while the app's own route table (and ``/openapi.json``) shows plain
    ``{prefix}/models/{model}``."""
    out: list[BaseRoute] = []
    for prefix in prefixes:
        out.append(Route(f"{prefix}/models", list_models, methods=["GET"]))
        one = Route("/{model:path}", retrieve_model, methods=["GET"])
        out.append(Mount(f"{prefix}/models", routes=[one]))
    return out
