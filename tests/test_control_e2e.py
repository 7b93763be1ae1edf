"""End to end over real HTTP with the placeholder provider: name, identity, thread, prompt.

Every test runs twice, on SQLite and on PostgreSQL (``database_url`` in conftest.py).
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
import pytest
from databases import on_database
from imagekit import solid
from live import GEN, live_gateway
from PIL import Image


@pytest.fixture
def make_config(make_config: Any, database_url: str | None) -> Any:
    return on_database(make_config, database_url)


def png(side: int = 32) -> bytes:
    return solid(side, (10, 200, 30))


def image_size(b64: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as img:
        return img.size


def test_request_with_name_identity_thread_and_prompt(make_config: Any) -> None:
    with live_gateway(make_config()) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        r = http.post(
            "/v2/prompts",
            json={
                "id": "poster",
                "name": "Poster",
                "template": "a poster of {{ input }}",
                "model": "placeholder/poster",
                "parameters": {"size": "32x32", "n": 2},
            },
        )
        assert r.status_code == 201, r.text
        body = {
            "model": "placeholder/other",
            "prompt": "a fox",
            "response_format": "b64_json",
            "metadata": {"campaign": "spring"},
            "identity": {
                "id": "user-1",
                "display_name": "Ada",
                "email": "ada@example.com",
                "metadata": {"plan": "pro"},
                "tags": ["beta"],
            },
            "thread": {"id": "th-1", "tags": ["draft"]},
            "orq": {"name": "spring-poster", "prompt": {"id": "poster", "version": "latest"}},
        }
        first = http.post(GEN, json=body)
        assert first.status_code == 200, first.text
        assert first.headers["x-orq-model"] == "placeholder/poster"  # the prompt's model
        data = first.json()["data"]
        assert len(data) == 2 and image_size(data[0]["b64_json"]) == (32, 32)  # its defaults
        first_id = first.headers["x-orq-trace-id"]

        r = http.get(f"/v2/traces/{first_id}")
        assert r.status_code == 200, r.text
        trace = r.json()
        assert trace["id"] == first_id and trace["name"] == "spring-poster"
        assert trace["operation"] == "generations" and trace["status"] == 200
        assert (trace["identity_id"], trace["thread_id"]) == ("user-1", "th-1")
        assert (trace["prompt_id"], trace["prompt_version"]) == ("poster", 1)
        assert trace["requested_model"] == trace["served_model"] == "placeholder/poster"
        assert (trace["n"], trace["size"]) == (2, "32x32")
        assert trace["cost_usd"] == 0.0 and trace["notes"] == []
        assert trace["metadata"] == {"campaign": "spring"}
        assert len(trace["attempts"]) == 1 and trace["attempts"][0]["status"] == 200
        assert len(trace["output_blobs"]) == 2
        assert trace["duration_ms"] > 0 and trace["started_at"].endswith("Z")
        assert data[0]["b64_json"][:40] not in r.text and len(r.text) < 4000  # no base64

        ident = http.get("/v2/identities/user-1").json()
        assert ident["display_name"] == "Ada" and ident["email"] == "ada@example.com"
        assert ident["metadata"] == [{"plan": "pro"}] and ident["tags"] == ["beta"]
        assert ident["totals"] == {
            "requests": 1,
            "succeeded": 1,
            "images": 2,
            "cost_usd": 0.0,
            "cost_unknown": 0,
        }

        # second request: display_name changes, email is kept; request params beat defaults
        body["identity"] = {"id": "user-1", "display_name": "Ada L."}
        body["thread"] = {"id": "th-1", "tags": ["final"]}
        body["size"] = "48x48"
        body["orq"]["prompt"]["version"] = 1
        second = http.post(GEN, json=body)
        assert second.status_code == 200, second.text
        assert image_size(second.json()["data"][0]["b64_json"]) == (48, 48)
        ident = http.get("/v2/identities/user-1").json()
        assert ident["display_name"] == "Ada L." and ident["email"] == "ada@example.com"
        assert ident["metadata"] == [{"plan": "pro"}] and ident["totals"]["requests"] == 2

        thread = http.get("/v2/threads/th-1").json()
        assert thread["tags"] == ["draft", "final"]
        assert [t["id"] for t in thread["traces"]] == [first_id, second.headers["x-orq-trace-id"]]
        assert thread["traces"][1]["size"] == "48x48"

        prompt = http.get("/v2/prompts/poster").json()
        assert prompt["latest_version"] == 1 and prompt["name"] == "Poster"
        assert prompt["latest"]["template"] == "a poster of {{ input }}"
        assert prompt["latest"]["parameters"] == {"size": "32x32", "n": 2}


def test_header_identity_only_tags(make_config: Any) -> None:
    with live_gateway(make_config()) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        body = {"model": "placeholder/a", "prompt": "x", "size": "32x32"}
        known = {**body, "identity": {"id": "known", "display_name": "Known", "email": "k@ex.io"}}
        assert http.post(GEN, json=known).status_code == 200
        r = http.post(GEN, json=body, headers={"X-ORQ-IDENTITY-ID": "known"})
        assert r.status_code == 200
        ghost = http.post(GEN, json=body, headers={"X-ORQ-CONTACT-ID": "ghost"})
        assert ghost.status_code == 200

        trace = http.get(f"/v2/traces/{r.headers['x-orq-trace-id']}").json()
        assert trace["identity_id"] == "known"
        ident = http.get("/v2/identities/known").json()
        assert (ident["display_name"], ident["email"]) == ("Known", "k@ex.io")
        assert ident["totals"]["requests"] == 2

        assert (
            http.get(f"/v2/traces/{ghost.headers['x-orq-trace-id']}").json()["identity_id"]
            == "ghost"
        )
        missing = http.get("/v2/identities/ghost")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        listed = http.get("/v2/traces", params={"identity_id": "ghost"}).json()
        assert [t["id"] for t in listed["data"]] == [ghost.headers["x-orq-trace-id"]]
        ids = [i["id"] for i in http.get("/v2/identities").json()["data"]]
        assert ids == ["known"]


def test_unknown_prompt_runs_unchanged_and_is_noted(make_config: Any) -> None:
    with live_gateway(make_config()) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        r = http.post(
            GEN,
            json={
                "model": "placeholder/a",
                "prompt": "x",
                "size": "32x32",
                "orq": {"prompt": {"id": "nope", "version": "latest"}},
            },
        )
        assert r.status_code == 200 and r.headers["x-orq-model"] == "placeholder/a"
        trace = http.get(f"/v2/traces/{r.headers['x-orq-trace-id']}").json()
        assert trace["notes"] == ["prompt_not_found"] and trace["prompt_id"] is None
        http.post("/v2/prompts", json={"id": "p", "template": "t {{input}}"})
        r = http.post(
            GEN,
            json={
                "model": "placeholder/a",
                "prompt": "x",
                "size": "32x32",
                "orq": {"prompt": {"id": "p", "version": 7}},
            },
        )
        trace = http.get(f"/v2/traces/{r.headers['x-orq-trace-id']}").json()
        assert trace["notes"] == ["prompt_not_found"]


def test_prompt_applies_to_edits_and_variations(make_config: Any) -> None:
    with live_gateway(make_config()) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        r = http.post(
            "/v2/prompts",
            json={
                "id": "remix",
                "template": "remix: {{input}}",
                "model": "placeholder/remix",
                "parameters": {"size": "32x32"},
            },
        )
        assert r.status_code == 201
        orq = json.dumps({"prompt": {"id": "remix", "version": "latest"}, "name": "remixing"})
        for operation, fields in (
            ("edits", {"model": "placeholder/a", "prompt": "add a hat", "orq": orq}),
            ("variations", {"model": "placeholder/a", "orq": orq}),
        ):
            r = http.post(
                f"/v2/router/images/{operation}",
                data=fields,
                files={"image": ("in.png", png(), "image/png")},
            )
            assert r.status_code == 200, r.text
            assert r.headers["x-orq-model"] == "placeholder/remix"
            trace = http.get(f"/v2/traces/{r.headers['x-orq-trace-id']}").json()
            assert trace["operation"] == operation and trace["name"] == "remixing"
            assert (trace["prompt_id"], trace["prompt_version"], trace["size"]) == (
                "remix",
                1,
                "32x32",
            )


def test_trace_filters_and_cursor_over_http(make_config: Any) -> None:
    with live_gateway(make_config()) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        ids = []
        for i in range(5):
            body = {
                "model": f"placeholder/m{i % 2}",
                "prompt": "x",
                "size": "32x32",
                "name": f"job-{i % 2}",
                "thread": {"id": "batch"},
            }
            r = http.post(GEN, json=body)
            assert r.status_code == 200
            ids.append(r.headers["x-orq-trace-id"])
        bad = http.post(GEN, json={"model": "placeholder/m0", "prompt": "x", "size": "1x1"})
        assert bad.status_code == 400

        seen, cursor = [], None
        while True:
            params = {"limit": 2, "thread_id": "batch"} | ({"cursor": cursor} if cursor else {})
            page = http.get("/v2/traces", params=params).json()
            seen += [t["id"] for t in page["data"]]
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
        assert sorted(seen) == sorted(ids) and seen == sorted(seen, reverse=True)

        def listed(**params: Any) -> set[str]:
            r = http.get("/v2/traces", params=params)
            assert r.status_code == 200, r.text
            return {t["id"] for t in r.json()["data"]}

        assert listed(name="job-1") == {ids[1], ids[3]}
        assert listed(model="placeholder/m0") >= {ids[0], ids[2], ids[4]}
        assert listed(status="error") == {bad.headers["x-orq-trace-id"]}
        assert listed(status="400") == {bad.headers["x-orq-trace-id"]}
        assert len(listed(status="success")) == 5
        assert listed(since="2000-01-01T00:00:00Z", until="2000-01-02") == set()
        assert len(listed(since="2000-01-01T00:00:00Z")) == 6
        for params in ({"limit": "0"}, {"status": "maybe"}, {"cache": "x"}, {"since": "then"}):
            r = http.get("/v2/traces", params=params)
            assert r.status_code == 400, params
            assert r.json()["error"]["param"] == next(iter(params))
        r = http.get("/v2/traces/01NOPE")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert http.get("/v2/threads/none").status_code == 404


def test_read_api_uses_the_bearer_keys(make_config: Any) -> None:
    with live_gateway(make_config(api_keys=["sk-gw"])) as gw:
        with httpx.Client(base_url=gw.url, timeout=30) as http:
            r = http.get("/v2/traces")
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "authentication_required"
            assert (
                http.get("/v2/prompts", headers={"Authorization": "Bearer no"}).status_code == 401
            )
            auth = {"Authorization": "Bearer sk-gw"}
            r = http.post(
                GEN, headers=auth, json={"model": "placeholder/a", "prompt": "x", "size": "32x32"}
            )
            assert r.status_code == 200
            page = http.get("/v2/traces", headers=auth).json()
            assert page["data"][0]["api_key_id"].startswith("key_")
            assert "sk-gw" not in json.dumps(page)


def test_invalid_identity_email_is_a_400(make_config: Any) -> None:
    with live_gateway(make_config()) as gw:
        r = httpx.post(
            f"{gw.url}{GEN}",
            json={
                "model": "placeholder/a",
                "prompt": "x",
                "identity": {"id": "u", "email": "not-an-email"},
            },
        )
        assert r.status_code == 400
        assert r.json()["error"]["param"] == "identity.email"


def test_deprecated_contact_creates_the_identity(make_config: Any) -> None:
    with live_gateway(make_config()) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        body = {
            "model": "placeholder/a",
            "prompt": "x",
            "size": "16x16",
            "orq": {
                "contact": {
                    "id": "c-1",
                    "display_name": "Old SDK",
                    "metadata": [{"a": 1}, {"b": 2}],
                }
            },
        }
        r = http.post(GEN, json=body)
        assert r.status_code == 200
        ident = http.get("/v2/identities/c-1").json()
        assert ident["display_name"] == "Old SDK" and ident["metadata"] == [{"a": 1}, {"b": 2}]
        trace = http.get(f"/v2/traces/{r.headers['x-orq-trace-id']}").json()
        assert trace["identity_id"] == "c-1"


def test_a_refused_body_is_traced_so_its_trace_id_resolves(make_config: Any) -> None:
    with live_gateway(make_config()) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        r = http.post(GEN, json={"model": "placeholder/a", "prompt": "x", "n": 99})
        assert r.status_code == 400
        trace_id = r.headers["x-orq-trace-id"]
        got = http.get(f"/v2/traces/{trace_id}")
        assert got.status_code == 200, got.text
        trace = got.json()
        assert trace["status"] == 400
        assert trace["error_code"] == "invalid_request_body"
        assert trace["operation"] == "generations"


def test_malformed_params_are_400_or_404_never_500(
    make_config: Any, database_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """ASCII digits only, bounded lengths and ranges, no control characters (PostgreSQL refuses
    NUL): a bad query parameter is a 400 naming it, a path id that cannot exist is a 404."""
    config = make_config(api_keys=["sk-gw"], database_url=database_url)
    auth = {"Authorization": "Bearer sk-gw"}
    long = "x" * 300
    bad_queries = [
        ("/v2/traces", "limit=%C2%B2", "limit"),  # "²".isdigit() is true, int("²") raises
        ("/v2/traces", "limit=%D9%A1", "limit"),  # Arabic-Indic one
        ("/v2/traces", f"limit={'1' * 5000}", "limit"),  # int() refuses over 4300 digits
        ("/v2/traces", "limit=", "limit"),
        ("/v2/traces", "limit=501", "limit"),
        ("/v2/traces", "status=%C2%B2%C2%B2%C2%B2", "status"),
        ("/v2/traces", "status=99", "status"),
        ("/v2/traces", "cache=%C4%B0", "cache"),
        ("/v2/traces", "since=nan", "since"),
        ("/v2/traces", "since=1e999", "since"),
        ("/v2/traces", "until=%D9%A1%D9%A2", "until"),
        ("/v2/traces", "until=10000-01-01", "until"),
        ("/v2/traces", f"since={'1' * 5000}", "since"),
        ("/v2/traces", "cursor=a%00b", "cursor"),
        ("/v2/traces", "identity_id=%00", "identity_id"),
        ("/v2/traces", "thread_id=%1B", "thread_id"),
        ("/v2/traces", f"name={long}", "name"),
        ("/v2/traces", "model=%C2%85", "model"),  # C1 control character
        ("/v2/identities", "limit=%C2%B2", "limit"),
        ("/v2/identities", "cursor=%00", "cursor"),
        ("/v2/prompts", "limit=0", "limit"),
        ("/v2/prompts", f"cursor={long}", "cursor"),
    ]
    bad_paths = [
        "/v2/traces/%00",
        f"/v2/traces/{long}",
        "/v2/identities/a%00b",
        f"/v2/identities/{long}",
        "/v2/threads/%0A",
        "/v2/prompts/%7F",
        f"/v2/prompts/{long}/versions",
        "/v2/prompts/%00/versions/latest",
    ]
    with live_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        for path, query, param in bad_queries:
            r = http.get(f"{path}?{query}", headers=auth)
            assert r.status_code == 400, (path, query, r.text)
            error = r.json()["error"]
            assert (error["param"], error["code"], error["type"]) == (
                param,
                "invalid_request_body",
                "invalid_request_error",
            ), (path, query)
        for path in bad_paths:
            r = http.get(path, headers=auth)
            assert r.status_code == 404, (path, r.text)
            assert r.json()["error"]["code"] == "not_found", path
        r = http.post("/v2/prompts/%00/versions", headers=auth, json={"template": "t"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        # well-formed values still work, including the edges of each range
        edges = ["limit=1", "limit=500", "status=599", "cache=HIT", "since=0", f"name={'n' * 256}"]
        edges += ["since=2026-01-02T03:04:05Z", "until=253402300799"]
        for query in edges:
            r = http.get(f"/v2/traces?{query}", headers=auth)
            assert r.status_code == 200, (query, r.text)
        assert http.get("/v2/traces?limit=%C2%B2").status_code == 401  # auth still comes first
    assert not [rec for rec in caplog.records if rec.exc_info], "a traceback was logged"
