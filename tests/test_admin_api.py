"""Workspaces, managed keys and usage over real HTTP with the official httpx client.

The operator's config key is an admin of ``default``; managed keys made through the admin API
belong to one workspace each. Every control-plane object is scoped to its workspace: tried from
another workspace, each read and write route answers the same 404 as for a missing object and
changes nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from live import GEN, LiveGateway, live_gateway

ADMIN = "sk-operator"


def bearer(key: str, workspace: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if workspace is not None:
        headers["x-imagegate-workspace"] = workspace
    return headers


def error(r: httpx.Response, status: int, code: str, param: str | None = None) -> str:
    """Assert orq's error body with this status and code (and param); the message."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()["error"]
    assert set(body) >= {"message", "type", "param", "code"}
    assert body["code"] == code, body
    if param is not None:
        assert body["param"] == param, body
    message: str = body["message"]
    return message


def make_key(http: httpx.Client, workspace: str, name: str, role: str = "member") -> str:
    r = http.post(
        "/v2/admin/keys",
        headers=bearer(ADMIN),
        json={"workspace": workspace, "name": name, "role": role},
    )
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


@pytest.fixture
def gw(make_config: Any, database_url: str | None) -> Iterator[LiveGateway]:
    """A gateway with an admin key, once on SQLite and once on PostgreSQL."""
    with live_gateway(make_config(api_keys=[ADMIN], database_url=database_url)) as server:
        yield server


@pytest.fixture
def http(gw: LiveGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        yield client


def test_admin_creates_workspaces(http: httpx.Client) -> None:
    admin = bearer(ADMIN)
    body = {
        "id": "team-a",
        "name": "Team A",
        "key_limits": {"rpm": 60, "images_per_min": 100},
        "identity_limits": {"concurrent": 2},
        "budget": {"usd": 50, "period": "month"},
        "identity_budget": {"usd": 1.5, "period": "day"},
        "allow_unpriced": False,
    }
    r = http.post("/v2/admin/workspaces", headers=admin, json=body)
    assert r.status_code == 201, r.text
    ws = r.json()
    assert ws["id"] == "team-a" and ws["object"] == "workspace" and ws["name"] == "Team A"
    assert ws["key_limits"] == {"rpm": 60, "images_per_min": 100, "concurrent": None}
    assert ws["identity_limits"] == {"rpm": None, "images_per_min": None, "concurrent": 2}
    assert ws["budget"] == {"usd": 50.0, "period": "month"} and ws["key_budget"] is None
    assert ws["identity_budget"] == {"usd": 1.5, "period": "day"}
    assert ws["allow_unpriced"] is False and ws["created_at"].endswith("Z")
    error(http.post("/v2/admin/workspaces", headers=admin, json=body), 409, "conflict")
    assert http.get("/v2/admin/workspaces/team-a", headers=admin).json() == ws

    bad = [
        ({"id": "Team A"}, "id"),
        ({"id": ""}, "id"),
        ({"name": "x"}, "id"),
        ({"id": "t", "key_limits": {"rpm": 0}}, "key_limits.rpm"),
        ({"id": "t", "key_limits": {"rpm": 1.5}}, "key_limits.rpm"),
        ({"id": "t", "key_limits": {"rpm": "5"}}, "key_limits.rpm"),
        ({"id": "t", "key_limits": {"rpm": 10**30}}, "key_limits.rpm"),
        ({"id": "t", "identity_limits": {"burst": 5}}, "identity_limits.burst"),
        ({"id": "t", "budget": {"usd": -1}}, "budget.usd"),
        ({"id": "t", "budget": {"usd": 1e308 * 10}}, "body"),  # orjson refuses Infinity
        ({"id": "t", "key_budget": {"usd": 5, "period": "week"}}, "key_budget.period"),
        ({"id": "t", "allow_unpriced": "yes"}, "allow_unpriced"),
        ({"id": "t", "colour": "red"}, "colour"),
    ]
    for payload, param in bad:
        if param == "body":
            r = http.post(
                "/v2/admin/workspaces",
                headers={**admin, "content-type": "application/json"},
                content=b'{"id": "t", "budget": {"usd": Infinity}}',
            )
        else:
            r = http.post("/v2/admin/workspaces", headers=admin, json=payload)
        error(r, 400, "invalid_request_body", param)
    error(http.get("/v2/admin/workspaces/t", headers=admin), 404, "not_found")

    listed = http.get("/v2/admin/workspaces", headers=admin).json()
    assert listed["object"] == "list"
    assert {w["id"] for w in listed["data"]} == {"default", "team-a"}

    patch = {"name": "A-Team", "key_budget": {"usd": 5, "period": "day"}, "budget": None}
    r = http.patch("/v2/admin/workspaces/team-a", headers=admin, json=patch)
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["name"] == "A-Team" and patched["budget"] is None
    assert patched["key_budget"] == {"usd": 5.0, "period": "day"}
    unchanged = ("key_limits", "identity_limits", "identity_budget", "allow_unpriced")
    assert {k: patched[k] for k in unchanged} == {k: ws[k] for k in unchanged}
    assert patched["created_at"] == ws["created_at"]
    assert http.get("/v2/admin/workspaces/team-a", headers=admin).json() == patched
    r = http.patch("/v2/admin/workspaces/team-a", headers=admin, json={"key_limits": None})
    assert r.json()["key_limits"] == {"rpm": None, "images_per_min": None, "concurrent": None}
    error(
        http.patch("/v2/admin/workspaces/team-a", headers=admin, json={"id": "team-b"}),
        400,
        "invalid_request_body",
        "id",
    )
    error(http.patch("/v2/admin/workspaces/nope", headers=admin, json={}), 404, "not_found")
    error(http.get("/v2/admin/workspaces/NOT%20AN%20ID", headers=admin), 404, "not_found")


def test_keys_are_shown_once_and_listed_by_prefix(http: httpx.Client) -> None:
    admin = bearer(ADMIN)
    body = {
        "workspace": "team-k",
        "name": "ci",
        "limits": {"rpm": 10},
        "budget": {"usd": 2, "period": "day"},
    }
    r = http.post("/v2/admin/keys", headers=admin, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert key.startswith("ig_live_") and len(key) == 48
    assert created["object"] == "api_key" and created["id"].startswith("key_")
    assert (created["workspace"], created["name"], created["role"]) == ("team-k", "ci", "member")
    assert created["prefix"] == key[:14] + "\u2026" and created["revoked_at"] is None
    assert created["limits"] == {"rpm": 10, "images_per_min": None, "concurrent": None}
    assert created["budget"] == {"usd": 2.0, "period": "day"}
    # the workspace did not exist: making a key in it creates it
    assert http.get("/v2/admin/workspaces/team-k", headers=admin).status_code == 200

    ops = {"workspace": "team-j", "name": "ops", "role": "admin"}
    other = http.post("/v2/admin/keys", headers=admin, json=ops).json()
    assert other["role"] == "admin" and other["key"] != key

    listed = http.get("/v2/admin/keys", headers=admin)
    assert listed.status_code == 200
    assert key not in listed.text and other["key"] not in listed.text
    assert "hash" not in listed.text
    by_id = {k["id"]: k for k in listed.json()["data"]}
    assert set(by_id) == {created["id"], other["id"]}
    assert by_id[created["id"]] == {k: v for k, v in created.items() if k != "key"}
    only = http.get("/v2/admin/keys", headers=admin, params={"workspace": "team-j"}).json()
    assert [k["id"] for k in only["data"]] == [other["id"]]
    one = http.get(f"/v2/admin/keys/{created['id']}", headers=admin)
    assert one.status_code == 200 and "key" not in one.json() and key not in one.text

    error(
        http.get("/v2/admin/keys", headers=admin, params={"workspace": "Bad Id"}),
        400,
        "invalid_request_body",
        "workspace",
    )
    for payload, param in [
        ({"name": "x"}, "workspace"),
        ({"workspace": "w"}, "name"),
        ({"workspace": "w", "name": ""}, "name"),
        ({"workspace": "w", "name": "x", "role": "owner"}, "role"),
        ({"workspace": "W!", "name": "x"}, "workspace"),
        ({"workspace": "w", "name": "x", "limits": {"rpm": -1}}, "limits.rpm"),
        ({"workspace": "w", "name": "x", "key": "ig_live_mine"}, "key"),
    ]:
        r = http.post("/v2/admin/keys", headers=admin, json=payload)
        error(r, 400, "invalid_request_body", param)
    error(http.get("/v2/admin/keys/key_0000000000000000", headers=admin), 404, "not_found")

    # the new key works for the image API and the control plane of its own workspace
    r = http.post(GEN, headers=bearer(key), json={"model": "placeholder/x", "prompt": "a"})
    assert r.status_code == 200, r.text
    trace = http.get(f"/v2/traces/{r.headers['x-orq-trace-id']}", headers=bearer(key)).json()
    assert trace["api_key_id"] == created["id"]


def test_member_keys_are_refused_on_admin_routes(http: httpx.Client) -> None:
    member = bearer(make_key(http, "team-m", "app"))
    calls = [
        ("GET", "/v2/admin/workspaces", None),
        ("POST", "/v2/admin/workspaces", {"id": "mine"}),
        ("GET", "/v2/admin/workspaces/team-m", None),
        ("PATCH", "/v2/admin/workspaces/team-m", {"budget": None}),
        ("GET", "/v2/admin/keys", None),
        ("POST", "/v2/admin/keys", {"workspace": "team-m", "name": "x", "role": "admin"}),
        ("GET", "/v2/admin/keys/key_0000000000000000", None),
        ("POST", "/v2/admin/keys/key_0000000000000000/revoke", None),
    ]
    for method, path, body in calls:
        r = http.request(method, path, headers=member, json=body)
        assert r.headers["content-type"] == "application/json"
        error(r, 403, "forbidden")
        assert r.json()["error"]["type"] == "permission_error"
    assert http.get("/v2/admin/workspaces/mine", headers=bearer(ADMIN)).status_code == 404
    # a member naming another workspace is refused; its own is fine
    error(
        http.get("/v2/traces", headers={**member, "x-imagegate-workspace": "default"}),
        403,
        "forbidden",
    )
    assert http.get("/v2/traces", headers={**member, "x-imagegate-workspace": "team-m"}).is_success
    # a managed admin key may use the admin API
    boss = bearer(make_key(http, "team-m", "boss", role="admin"))
    assert http.get("/v2/admin/workspaces", headers=boss).status_code == 200
    assert http.get("/v2/admin/workspaces").status_code == 401
    assert http.get("/v2/admin/keys", headers=bearer("ig_live_nope")).status_code == 401


def test_a_revoked_key_is_refused_on_its_next_request(http: httpx.Client) -> None:
    admin = bearer(ADMIN)
    created = http.post(
        "/v2/admin/keys", headers=admin, json={"workspace": "team-r", "name": "temp"}
    ).json()
    key = bearer(created["key"])
    body = {"model": "placeholder/x", "prompt": "a", "size": "32x32"}
    assert http.post(GEN, headers=key, json=body).status_code == 200
    assert http.get("/v2/traces", headers=key).status_code == 200
    r = http.post(f"/v2/admin/keys/{created['id']}/revoke", headers=admin)
    assert r.status_code == 200, r.text
    revoked = r.json()
    assert revoked["id"] == created["id"] and revoked["revoked_at"].endswith("Z")
    assert "key" not in revoked
    error(http.post(GEN, headers=key, json=body), 401, "invalid_api_key")
    error(http.get("/v2/traces", headers=key), 401, "invalid_api_key")
    listed = http.get("/v2/admin/keys", headers=admin, params={"workspace": "team-r"}).json()
    assert listed["data"][0]["revoked_at"] == revoked["revoked_at"]
    error(http.post("/v2/admin/keys/key_0000000000000000/revoke", headers=admin), 404, "not_found")


def test_usage_sums_match_the_traces(http: httpx.Client) -> None:
    first, second = make_key(http, "team-u", "one"), make_key(http, "team-u", "two")
    outsider = make_key(http, "team-v", "other")
    sent = [
        (first, 1, "alice", "placeholder/x"),
        (first, 3, "bob", "placeholder/y"),
        (second, 2, "alice", "placeholder/x"),
        (second, 99, None, "placeholder/x"),  # a 400: an error, no images
        (outsider, 4, "alice", "placeholder/x"),  # another workspace: never counted
    ]
    for key, n, identity, model in sent:
        body: dict[str, Any] = {"model": model, "prompt": "a fox", "n": n, "size": "16x16"}
        if identity:
            body["identity"] = {"id": identity}
        r = http.post(GEN, headers=bearer(key), json=body)
        assert r.status_code == (400 if n > 10 else 200), r.text

    traces = http.get("/v2/traces", headers=bearer(first), params={"limit": 500}).json()["data"]
    assert len(traces) == 4

    def expected(field: str) -> dict[str | None, dict[str, Any]]:
        rows: dict[str | None, dict[str, Any]] = defaultdict(
            lambda: {
                "requests": 0,
                "images": 0,
                "cost_usd": 0.0,
                "unpriced": 0,
                "errors": 0,
                "cache_hits": 0,
            }
        )
        for t in traces:
            group = t["served_model"] or t["requested_model"] if field == "model" else t[field]
            row = rows[group]
            row["requests"] += 1
            if t["status"] == 200:
                row["images"] += t["n"]
                if t["cost_usd"] is None:
                    row["unpriced"] += 1
            else:
                row["errors"] += 1
            row["cost_usd"] += t["cost_usd"] or 0.0
            row["cache_hits"] += t["cache"] == "hit"
        return dict(rows)

    for group_by, field in (("key", "api_key_id"), ("identity", "identity_id"), ("model", "model")):
        r = http.get("/v2/usage", headers=bearer(second), params={"group_by": group_by})
        assert r.status_code == 200, r.text
        usage = r.json()
        assert (usage["object"], usage["workspace"], usage["group_by"]) == (
            "list",
            "team-u",
            group_by,
        )
        assert usage["from"] is None and usage["to"] is None
        got = {row.pop("group"): row for row in usage["data"]}
        assert got == expected(field), group_by
    by_key = http.get("/v2/usage", headers=bearer(first)).json()  # group_by=key by default
    assert by_key["group_by"] == "key"
    assert sum(row["images"] for row in by_key["data"]) == 6  # 1 + 3 + 2
    assert sum(row["errors"] for row in by_key["data"]) == 1

    # the admin sees the same through the workspace header; other workspaces are apart
    admin = http.get("/v2/usage", headers=bearer(ADMIN, "team-u"), params={"group_by": "key"})
    assert admin.json()["data"] == http.get("/v2/usage", headers=bearer(first)).json()["data"]
    theirs = http.get("/v2/usage", headers=bearer(outsider)).json()
    assert [(row["requests"], row["images"]) for row in theirs["data"]] == [(1, 4)]
    assert http.get("/v2/usage", headers=bearer(ADMIN)).json()["data"] == []  # default: none

    in_2000 = {"from": "2000-01-01T00:00:00Z", "to": "946771200"}
    window = http.get("/v2/usage", headers=bearer(first), params=in_2000).json()
    assert window["data"] == [] and window["from"] == "2000-01-01T00:00:00.000Z"
    assert window["to"] == "2000-01-02T00:00:00.000Z"
    since_2000 = http.get("/v2/usage", headers=bearer(first), params={"from": "2000-01-01"})
    assert sum(row["requests"] for row in since_2000.json()["data"]) == 4
    for params, param in (
        ({"group_by": "day"}, "group_by"),
        ({"from": "nan"}, "from"),
        ({"to": "²"}, "to"),
        ({"from": "1" * 5000}, "from"),
    ):
        error(
            http.get("/v2/usage", headers=bearer(first), params=params),
            400,
            "invalid_request_body",
            param,
        )


def test_another_workspace_sees_nothing_and_changes_nothing(
    make_config: Any, database_url: str | None
) -> None:
    """Every control-plane read and write route, tried from workspace B on workspace A's
    objects: the same 404 as a missing object, and A's objects stay as they were."""
    config = make_config(api_keys=[ADMIN], database_url=database_url)
    with live_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        a, b = bearer(make_key(http, "ws-a", "a")), bearer(make_key(http, "ws-b", "b"))
        prompt = {
            "id": "poster",
            "name": "Poster",
            "template": "A: {{input}}",
            "model": "placeholder/a-model",
            "parameters": {"size": "32x32"},
        }
        assert http.post("/v2/prompts", headers=a, json=prompt).status_code == 201
        second = {"template": "A2: {{input}}", "model": "placeholder/a-model"}
        r = http.post("/v2/prompts/poster/versions", headers=a, json=second)
        assert r.status_code == 201 and r.json()["version"] == 2
        body = {
            "model": "placeholder/x",
            "prompt": "fox",
            "size": "16x16",
            "identity": {"id": "alice", "display_name": "Alice A", "email": "a@ex.io"},
            "thread": {"id": "th", "tags": ["a"]},
            "orq": {"prompt": {"id": "poster", "version": "latest"}},
        }
        r = http.post(GEN, headers=a, json=body)
        assert r.status_code == 200 and r.headers["x-orq-model"] == "placeholder/a-model"
        trace_id = r.headers["x-orq-trace-id"]

        def snapshot() -> dict[str, Any]:
            """Everything A can read of its objects."""
            paths = [
                f"/v2/traces/{trace_id}",
                "/v2/traces",
                "/v2/identities",
                "/v2/identities/alice",
                "/v2/threads/th",
                "/v2/prompts",
                "/v2/prompts/poster",
                "/v2/prompts/poster/versions",
                "/v2/prompts/poster/versions/latest",
                "/v2/prompts/poster/versions/1",
                "/v2/usage",
            ]
            out = {}
            for path in paths:
                got = http.get(path, headers=a)
                assert got.status_code == 200, (path, got.text)
                out[path] = got.json()
            return out

        before = snapshot()
        assert before["/v2/identities/alice"]["display_name"] == "Alice A"
        assert before["/v2/prompts/poster"]["latest_version"] == 2

        def same_as_missing(path: str, missing: str, method: str = "GET", **kw: Any) -> None:
            """B on A's object answers exactly what B gets for an id nobody has."""
            theirs = http.request(method, path, headers=b, **kw)
            nobody = http.request(method, missing, headers=b, **kw)
            assert theirs.status_code == nobody.status_code == 404, (path, theirs.text)
            assert theirs.json()["error"]["code"] == "not_found"
            real_id, fake_id = path.split("/")[3], missing.split("/")[3]
            assert theirs.json() == _swap(nobody.json(), fake_id, real_id), path

        same_as_missing(f"/v2/traces/{trace_id}", "/v2/traces/01JZZZZZZZZZZZZZZZZZZZZZZZ")
        same_as_missing("/v2/identities/alice", "/v2/identities/nobody")
        same_as_missing("/v2/threads/th", "/v2/threads/nobody")
        same_as_missing("/v2/prompts/poster", "/v2/prompts/nobody")
        same_as_missing("/v2/prompts/poster/versions", "/v2/prompts/nobody/versions")
        for version in ("latest", "1", "2"):
            same_as_missing(
                f"/v2/prompts/poster/versions/{version}", f"/v2/prompts/nobody/versions/{version}"
            )
        same_as_missing(
            "/v2/prompts/poster/versions",
            "/v2/prompts/nobody/versions",
            "POST",
            json={"template": "B: {{input}}"},
        )
        for path in ("/v2/traces", "/v2/identities", "/v2/prompts"):
            assert http.get(path, headers=b).json()["data"] == [], path
        listed = http.get("/v2/traces", headers=b, params={"identity_id": "alice"}).json()
        assert listed["data"] == []
        assert http.get("/v2/usage", headers=b).json()["data"] == []

        # B's own objects with the same ids are B's: A's stay as they were
        mine = {"id": "poster", "template": "B: {{input}}", "model": "placeholder/b-model"}
        assert http.post("/v2/prompts", headers=b, json=mine).status_code == 201
        b_body = {
            **body,
            "identity": {"id": "alice", "display_name": "Mallory"},
            "thread": {"id": "th", "tags": ["b"]},
        }
        r = http.post(GEN, headers=b, json=b_body)
        assert r.status_code == 200 and r.headers["x-orq-model"] == "placeholder/b-model"
        assert http.get("/v2/identities/alice", headers=b).json()["display_name"] == "Mallory"
        assert http.get("/v2/threads/th", headers=b).json()["tags"] == ["b"]
        r = http.post(GEN, headers=a, json=body)  # A's prompt cache entry is A's own
        assert r.headers["x-orq-model"] == "placeholder/a-model"

        after = snapshot()
        assert after["/v2/prompts/poster"] == before["/v2/prompts/poster"]
        assert after["/v2/prompts/poster/versions"] == before["/v2/prompts/poster/versions"]
        assert after["/v2/identities/alice"]["display_name"] == "Alice A"
        assert after["/v2/identities/alice"]["email"] == "a@ex.io"
        assert after["/v2/identities/alice"]["totals"]["requests"] == 2  # A's two, not B's
        assert after["/v2/threads/th"]["tags"] == ["a"]
        assert len(after["/v2/threads/th"]["traces"]) == 2
        assert after[f"/v2/traces/{trace_id}"] == before[f"/v2/traces/{trace_id}"]
        # the operator reaches A's objects through the workspace header
        as_a = bearer(ADMIN, "ws-a")
        assert http.get(f"/v2/traces/{trace_id}", headers=as_a).status_code == 200
        assert http.get("/v2/prompts/poster", headers=as_a).json() == after["/v2/prompts/poster"]
        assert http.get(f"/v2/traces/{trace_id}", headers=bearer(ADMIN)).status_code == 404


def _swap(node: Any, old: str, new: str) -> Any:
    """``node`` with ``old`` replaced by ``new`` in every string (the id in a message)."""
    if isinstance(node, dict):
        return {k: _swap(v, old, new) for k, v in node.items()}
    if isinstance(node, str):
        return node.replace(old, new)
    return node


def test_changed_limits_apply_at_once(http: httpx.Client) -> None:
    """A PATCH reaches this process's admission at once (no waiting out the workspace cache)."""
    key = bearer(make_key(http, "team-l", "app"))
    body = {"model": "placeholder/x", "prompt": "a", "size": "16x16"}
    assert http.post(GEN, headers=key, json=body).status_code == 200  # caches "no limits"
    r = http.patch(
        "/v2/admin/workspaces/team-l", headers=bearer(ADMIN), json={"key_limits": {"rpm": 1}}
    )
    assert r.status_code == 200, r.text
    first = http.post(GEN, headers=key, json=body)
    assert first.status_code == 200, first.text
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    refused = http.post(GEN, headers=key, json=body)
    error(refused, 429, "rate_limit_exceeded")
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    # every rate header matches what /openapi.json declares for the image routes
    spec = http.get("/openapi.json").json()
    declared = spec["paths"][GEN]["post"]["responses"]["429"]["headers"]
    sent = {k: v for k, v in refused.headers.items() if k.startswith("x-ratelimit-")}
    assert len(sent) == 3, sent  # only the requests limit is set
    for name, value in [*sent.items(), ("Retry-After", refused.headers["Retry-After"])]:
        assert re.fullmatch(declared[name]["schema"]["pattern"], value), (name, value)


def test_store_refusals_become_orq_errors() -> None:
    """The store raises plain errors; the API answers them as orq's body: a taken id is 409
    ``conflict``, a value the store will not keep a 400."""
    from imagegate.api.control import store_refusal
    from imagegate.store import Conflict, InvalidRecord

    taken = store_refusal(Conflict("workspace 'a' already exists", param="id"))
    assert taken.status == 409
    error = {
        "message": "workspace 'a' already exists",
        "type": "invalid_request_error",
        "param": "id",
        "code": "conflict",
    }
    assert taken.body() == {"error": error}
    bad = store_refusal(InvalidRecord("workspace id 'A B': lowercase", param="workspace"))
    assert bad.status == 400 and bad.body()["error"]["code"] == "invalid_request_body"
    assert bad.body()["error"]["param"] == "workspace"
