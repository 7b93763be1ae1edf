"""The admin API: workspaces and managed API keys (admin keys only; members get 403).

Workspaces carry the default rate limits and budgets of their keys and identities; keys are
made here, returned in clear exactly once (the answer to ``POST /v2/admin/keys``) and stored
only as an HMAC under the deployment's pepper, so lists show the prefix and nothing else.
Revoking is immediate: ``api.auth`` looks managed keys up on every request.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..control import ControlPlane
from ..errors import InvalidRequest, NotFound
from ..keyring import pepper
from ..workspaces import (
    WORKSPACE_ID,
    ApiKeyRecord,
    Budget,
    Principal,
    RateLimits,
    Workspace,
    mint_key,
    valid_workspace_id,
)
from .body import read_json
from .control import Handler, guarded
from .params import MAX_ID_CHARS, path_id, query_text
from .prompts import validate
from .responses import JSONResponse
from .views import iso, page_view, workspace_view

MAX_RATE = 1_000_000_000  # far above any real limit, far below 64-bit overflow in Redis/SQL
MAX_USD = 1e12
WORKSPACE_PATTERN = f"^{WORKSPACE_ID.pattern}$"
NAME_CHARS = 256

Rate = Annotated[StrictInt, Field(ge=1, le=MAX_RATE)]
WorkspaceId = Annotated[StrictStr, Field(pattern=WORKSPACE_PATTERN)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=NAME_CHARS)]


class LimitsBody(BaseModel):
    """Per-minute rates and concurrent requests, each a positive whole number or absent."""

    model_config = ConfigDict(extra="forbid")

    rpm: Rate | None = None
    images_per_min: Rate | None = None
    concurrent: Rate | None = None

    def value(self) -> RateLimits:
        return RateLimits(self.rpm, self.images_per_min, self.concurrent)


class BudgetBody(BaseModel):
    """USD per calendar day or month (UTC)."""

    model_config = ConfigDict(extra="forbid")

    usd: Annotated[float, Field(ge=0, le=MAX_USD, allow_inf_nan=False, strict=True)]
    period: Literal["day", "month"] = "month"

    def value(self) -> Budget:
        return Budget(self.usd, self.period)


def _no_defaults(schema: dict[str, Any]) -> None:
    """A PATCH keeps what is absent; the create defaults would mislead its schema."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


class WorkspacePatch(BaseModel):
    """``PATCH /v2/admin/workspaces/{id}``: a field given replaces the stored one; ``null``
    clears a name, limits or budget; an absent field keeps its value."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_defaults)

    name: Name | None = None
    key_limits: LimitsBody | None = None
    identity_limits: LimitsBody | None = None
    budget: BudgetBody | None = None
    key_budget: BudgetBody | None = None
    identity_budget: BudgetBody | None = None
    allow_unpriced: StrictBool = True

    def changes(self) -> dict[str, Any]:
        """The dataclass fields of ``Workspace`` this body sets."""
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if isinstance(value, LimitsBody | BudgetBody):
                value = value.value()
            elif value is None and name.endswith("_limits"):
                value = RateLimits()
            out[name] = value
        return out


class WorkspaceCreate(WorkspacePatch):
    """``POST /v2/admin/workspaces``: the id and any of the patchable fields."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=None)

    id: WorkspaceId


class KeyCreate(BaseModel):
    """``POST /v2/admin/keys``: the workspace is created when it does not exist yet."""

    model_config = ConfigDict(extra="forbid")

    workspace: WorkspaceId
    name: Name
    role: Literal["member", "admin"] = "member"
    limits: LimitsBody | None = None
    budget: BudgetBody | None = None


# --- JSON shapes (workspaces as the CLI shows them; keys name their ``workspace``) ----------
def key_view(k: ApiKeyRecord) -> dict[str, Any]:
    """Never the key nor its hash: the prefix is all a list may show."""
    return {
        "id": k.id,
        "object": "api_key",
        "workspace": k.workspace_id,
        "name": k.name,
        "role": k.role,
        "prefix": k.prefix + "\u2026",
        "created_at": iso(k.created_at),
        "revoked_at": iso(k.revoked_at),
        "limits": k.limits.as_dict(),
        "budget": None if k.budget is None else k.budget.as_dict(),
    }


# --- handlers ----------------------------------------------------------------------------------
def _workspace_id(request: Request) -> str:
    """A path id that is not a valid workspace id names nothing: 404."""
    raw = path_id(request.path_params, "workspace_id", what="workspace")
    if not valid_workspace_id(raw):
        raise NotFound(f"workspace {raw[:64]!r} not found", param="id")
    return raw


def _forget(request: Request, workspace_id: str) -> None:
    """This process applies a changed workspace at once (others within the tenancy TTL)."""
    request.app.state.gateway.tenancy.forget(workspace_id)


def _pepper(request: Request) -> bytes:
    """The deployment's pepper, derived once per app (it may read the signing key's file)."""
    state = request.app.state
    cached: bytes | None = getattr(state, "admin_key_pepper", None)
    if cached is None:
        cached = state.admin_key_pepper = pepper(request.app.state.gateway.config)
    return cached


async def create_workspace(request: Request, control: ControlPlane, who: Principal) -> Response:
    body = validate(WorkspaceCreate, await read_json(request))
    changes = body.changes()
    changes.pop("id", None)
    ws = replace(Workspace(body.id, created_at=time.time()), **changes)
    created = await control.store.create_workspace(ws)  # Conflict (409) when it exists
    _forget(request, created.id)
    return _json(workspace_view(created), 201)


async def list_workspaces(request: Request, control: ControlPlane, who: Principal) -> Response:
    items = await control.store.list_workspaces()
    return _json(page_view([workspace_view(w) for w in items], None))


async def get_workspace(request: Request, control: ControlPlane, who: Principal) -> Response:
    ws_id = _workspace_id(request)
    ws = await control.store.get_workspace(ws_id)
    if ws is None:
        raise NotFound(f"workspace {ws_id!r} not found", param="id")
    return _json(workspace_view(ws))


async def patch_workspace(request: Request, control: ControlPlane, who: Principal) -> Response:
    ws_id = _workspace_id(request)
    body = validate(WorkspacePatch, await read_json(request))
    ws = await control.store.get_workspace(ws_id)
    updated = None
    if ws is not None:
        updated = await control.store.update_workspace(replace(ws, **body.changes()))
    if updated is None:
        raise NotFound(f"workspace {ws_id!r} not found", param="id")
    _forget(request, ws_id)
    return _json(workspace_view(updated))


async def create_key(request: Request, control: ControlPlane, who: Principal) -> Response:
    body = validate(KeyCreate, await read_json(request))
    now = time.time()
    await control.store.ensure_workspace(body.workspace, now)
    _forget(request, body.workspace)
    key, record = mint_key(
        _pepper(request),
        body.workspace,
        body.name,
        body.role,
        now=now,
        limits=body.limits.value() if body.limits is not None else None,
        budget=body.budget.value() if body.budget is not None else None,
    )
    created = await control.store.create_key(record)
    return _json({**key_view(created), "key": key}, 201)  # the only time the key is shown


async def list_keys(request: Request, control: ControlPlane, who: Principal) -> Response:
    workspace = query_text(request.query_params, "workspace", MAX_ID_CHARS)
    if workspace is not None and not valid_workspace_id(workspace):
        raise InvalidRequest("workspace: a workspace id ([a-z0-9][a-z0-9_-]*)", param="workspace")
    keys = await control.store.list_keys(workspace)
    return _json(page_view([key_view(k) for k in keys], None))


def _key_id(request: Request) -> str:
    return path_id(request.path_params, "key_id", what="key")


async def get_key(request: Request, control: ControlPlane, who: Principal) -> Response:
    key_id = _key_id(request)
    record = await control.store.get_key(key_id)
    if record is None:
        raise NotFound(f"key {key_id!r} not found", param="id")
    return _json(key_view(record))


async def revoke_key(request: Request, control: ControlPlane, who: Principal) -> Response:
    key_id = _key_id(request)
    record = await control.store.revoke_key(key_id, time.time())
    if record is None:
        raise NotFound(f"key {key_id!r} not found", param="id")
    return _json(key_view(record))


def _json(content: dict[str, Any], status: int = 200) -> Response:
    return JSONResponse(content, status_code=status)


def admin_routes() -> list[BaseRoute]:
    """Appended to the app's routes by ``api.app.routes``; every one needs an admin key."""
    table: list[tuple[str, Handler, str]] = [
        ("/v2/admin/workspaces", create_workspace, "POST"),
        ("/v2/admin/workspaces", list_workspaces, "GET"),
        ("/v2/admin/workspaces/{workspace_id}", get_workspace, "GET"),
        ("/v2/admin/workspaces/{workspace_id}", patch_workspace, "PATCH"),
        ("/v2/admin/keys", create_key, "POST"),
        ("/v2/admin/keys", list_keys, "GET"),
        ("/v2/admin/keys/{key_id}", get_key, "GET"),
        ("/v2/admin/keys/{key_id}/revoke", revoke_key, "POST"),
    ]
    return [
        Route(path, guarded(handler, admin=True), methods=[method])
        for path, handler, method in table
    ]
