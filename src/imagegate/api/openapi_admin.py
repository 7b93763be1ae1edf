"""The admin routes of ``/openapi.json``: workspaces and managed keys."""

from __future__ import annotations

from typing import Any

from .openapi_common import WORKSPACE_ID_PATTERN, control_op, path_id, query_param, ref


def admin_paths() -> dict[str, Any]:
    """Workspaces and managed keys: admin keys only, so no workspace header."""
    ws_id = {
        "name": "workspace_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": WORKSPACE_ID_PATTERN},
        "description": "the workspace id; one that cannot exist is a 404",
    }
    key_id = path_id("key_id", "key")
    in_ws = query_param(
        "workspace",
        {"type": "string", "pattern": f"^(|{WORKSPACE_ID_PATTERN[1:-1]})$"},
        "only this workspace's keys; empty is absent",
    )

    def admin(summary: str, ok: str, **kw: Any) -> dict[str, Any]:
        return control_op(summary, ref(ok), workspace=False, **kw)

    return {
        "/v2/admin/workspaces": {
            "get": admin("List workspaces", "WorkspaceList"),
            "post": admin("Create a workspace", "Workspace", body="WorkspaceCreate", status="201"),
        },
        "/v2/admin/workspaces/{workspace_id}": {
            "get": admin("One workspace", "Workspace", params=[ws_id]),
            "patch": admin(
                "Change a workspace's name, limits or budgets",
                "Workspace",
                params=[ws_id],
                body="WorkspacePatch",
            ),
        },
        "/v2/admin/keys": {
            "get": admin(
                "List managed keys (prefix only, never the key)", "ApiKeyList", params=[in_ws]
            ),
            "post": admin(
                "Create a key; the answer is the only time it is shown",
                "ApiKeyCreated",
                body="KeyCreate",
                status="201",
            ),
        },
        "/v2/admin/keys/{key_id}": {"get": admin("One managed key", "ApiKey", params=[key_id])},
        "/v2/admin/keys/{key_id}/revoke": {
            "post": admin(
                "Revoke a key: refused from its next request on", "ApiKey", params=[key_id]
            ),
        },
    }
