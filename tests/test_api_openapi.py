"""`GET /openapi.json` describes every image route and its body."""

from __future__ import annotations

import re
from typing import Any

import httpx
from live import live_gateway

PREFIXES = ("/v2/router", "/v3/router", "/v2/gateway", "/v2/proxy", "/v1")
OPERATIONS = ("generations", "edits", "variations")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        resolved: dict[str, Any] = spec["components"]["schemas"][name]
        return resolved
    return schema


def _raw_constraints(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [k for k in ("ge", "le", "gt", "lt") if k in node]
        return found + [k for v in node.values() for k in _raw_constraints(v)]
    if isinstance(node, list):
        return [k for v in node for k in _raw_constraints(v)]
    return []


def test_openapi_describes_every_image_route(make_config: Any) -> None:
    with live_gateway(make_config()) as gw:
        r = httpx.get(gw.url + "/openapi.json")
        app_routes = [route for route in gw.app.routes if getattr(route, "methods", None)]
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    expected = {f"{p}/images/{op}" for p in PREFIXES for op in OPERATIONS} | {"/health"}
    assert len(expected) == 16 and expected <= set(paths)
    assert "get" in paths["/health"]
    schemas = spec["components"]["schemas"]
    for prefix in PREFIXES:
        gen = paths[f"{prefix}/images/generations"]["post"]
        body = gen["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/CreateImageRequestBody"}
        for op in ("edits", "variations"):
            post = paths[f"{prefix}/images/{op}"]["post"]
            form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
            fields = {"model", "image", "orq", "retry", "fallback_on_codes"}
            assert fields <= set(form["properties"])
            assert form["properties"]["image"] is not None
            assert "401" in post["responses"] and "200" in post["responses"]
    gen_body = schemas["CreateImageRequestBody"]
    assert "prompt" in gen_body["required"]  # model: optional, the configured default applies
    assert "model" not in gen_body["required"]
    orq = _resolve(spec, gen_body["properties"]["orq"]["anyOf"][0])
    assert {"retry", "fallbacks", "cache", "load_balancer", "timeout", "identity"} <= set(
        orq["properties"]
    )
    retry = _resolve(spec, orq["properties"]["retry"]["anyOf"][0])
    assert retry["properties"]["count"]["maximum"] == 5
    assert {"Error", "ImagesResponse"} <= set(schemas)
    for route in app_routes:  # every route the app serves is described, with its methods
        if route.path != "/openapi.json":
            described = set(paths.get(route.path, {}))
            assert {m.lower() for m in route.methods} - {"head"} <= described, route.path
    assert not _raw_constraints(spec)  # JSON Schema says minimum/maximum, not pydantic's ge/le
    # every $ref points at a schema that exists
    text = r.text
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in schemas, name


def test_openapi_declares_every_parameter_and_response_shape(make_config: Any) -> None:
    """What the fuzzer (tests/test_fuzz_api.py) needs: every query and path parameter a handler
    reads, orq's error body for 4xx, the success shapes, and JSON parts in multipart."""
    with live_gateway(make_config()) as gw:
        spec = httpx.get(gw.url + "/openapi.json").json()
    paths = spec["paths"]

    def names(path: str, method: str = "get", where: str = "query|path") -> set[str]:
        params = paths[path][method].get("parameters", [])
        return {p["name"] for p in params if p["in"] in where.split("|")}

    assert names("/v2/traces") == {
        "limit",
        "cursor",
        "identity_id",
        "thread_id",
        "name",
        "model",
        "status",
        "cache",
        "since",
        "until",
    }
    assert names("/v2/identities") == names("/v2/prompts") == {"limit", "cursor"}
    assert names("/v2/files/{key}") == {"key", "expires", "sig"}
    assert names("/v2/prompts/{prompt_id}/versions/{version}") == {"prompt_id", "version"}
    assert names("/v2/usage") == {"group_by", "from", "to"}
    assert names("/v2/admin/keys") == {"workspace"}
    # the workspace header on every control-plane route, on no admin route (admins only)
    for path, item in paths.items():
        for method, operation in item.items():
            headers = names(path, method, "header")
            if path.startswith(
                ("/v2/traces", "/v2/identities", "/v2/threads", "/v2/prompts", "/v2/usage")
            ):
                assert headers == {"x-imagegate-workspace"}, (method, path)
                assert "403" in operation["responses"], (method, path)
            elif method == "post" and ("/images/" in path or path.startswith("/v2/jobs/images/")):
                # every image POST and job submit: run once, replayed after (long-calls.md)
                assert headers == {"Idempotency-Key"}, (method, path)
                assert {"409", "422"} <= set(operation["responses"]), (method, path)
            else:
                assert headers == set(), (method, path)
            if path.startswith("/v2/admin/"):
                assert operation["security"] == [{"ApiKey": []}], path
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
    for path, item in paths.items():
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
    assert paths["/v2/files/{key}"]["get"]["security"] == []
    assert paths["/v2/traces"]["get"]["security"] == [{"ApiKey": []}]
    ok = paths["/v2/traces"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/TraceList"}
    assert "201" in paths["/v2/prompts"]["post"]["responses"]
    assert paths["/v2/admin/keys"]["post"]["requestBody"]["content"]["application/json"] == {
        "schema": {"$ref": "#/components/schemas/KeyCreate"}
    }
    assert "201" in paths["/v2/admin/workspaces"]["post"]["responses"]
    assert "key" in spec["components"]["schemas"]["ApiKeyCreated"]["required"]
    assert "key" not in spec["components"]["schemas"]["ApiKey"]["properties"]
    for prefix in PREFIXES:  # rate limits and budgets on every image route
        responses = paths[f"{prefix}/images/generations"]["post"]["responses"]
        assert "Retry-After" in responses["429"]["headers"]
        for status in ("200", "429"):
            assert "x-ratelimit-remaining-images" in responses[status]["headers"]
    edits = paths["/v2/router/images/edits"]["post"]["requestBody"]["content"]
    form = edits["multipart/form-data"]
    assert "image" in form["schema"]["required"]
    assert form["encoding"]["orq"] == {"contentType": "application/json"}
