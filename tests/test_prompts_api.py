"""The prompts API and CLI: create, version, read, validation, and the in-process cache.

Every test runs twice, on SQLite and on PostgreSQL (``database_url`` in conftest.py).
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from databases import on_database
from live import GEN, live_gateway

from imagegate.cli import main
from imagegate.config import load_config
from imagegate.gateway import Gateway


@pytest.fixture
def make_config(make_config: Any, database_url: str | None) -> Any:
    return on_database(make_config, database_url)


def test_prompt_api_lifecycle_and_errors(make_config: Any) -> None:
    with live_gateway(make_config()) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        r = http.post("/v2/prompts", json={"name": "no id, no version"})
        assert r.status_code == 201
        generated = r.json()
        assert len(generated["id"]) == 26 and generated["latest_version"] is None
        assert "latest" not in generated

        r = http.post("/v2/prompts", json={"id": "p", "template": "v1 {{input}}"})
        assert r.status_code == 201 and r.json()["latest"]["version"] == 1
        dup = http.post("/v2/prompts", json={"id": "p", "template": "again"})
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "conflict"

        r = http.post(
            "/v2/prompts/p/versions",
            json={
                "template": "v2 {{input}}",
                "model": "placeholder/v2",
                "parameters": {"quality": "high", "n": 2.0},
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["version"] == 2 and r.json()["parameters"] == {"quality": "high", "n": 2}

        assert http.get("/v2/prompts/p/versions/latest").json()["version"] == 2
        assert http.get("/v2/prompts/p/versions/1").json()["template"] == "v1 {{input}}"
        assert [v["version"] for v in http.get("/v2/prompts/p/versions").json()["data"]] == [1, 2]
        assert http.get("/v2/prompts/p").json()["latest"]["model"] == "placeholder/v2"
        listed = [p["id"] for p in http.get("/v2/prompts").json()["data"]]
        assert sorted(listed) == sorted(["p", generated["id"]])

        cases: list[tuple[str, dict[str, Any] | str, int, str | None]] = [
            ("/v2/prompts", {"id": "bad id!"}, 400, "id"),
            ("/v2/prompts", {"id": "q", "model": "placeholder/x"}, 400, "template"),
            ("/v2/prompts", {"id": "q", "template": "t", "model": "no-provider"}, 400, "model"),
            (
                "/v2/prompts",
                {"id": "q", "template": "t", "parameters": {"colour": "red"}},
                400,
                "parameters.colour",
            ),
            (
                "/v2/prompts",
                {"id": "q", "template": "t", "parameters": {"n": 11}},
                400,
                "parameters.n",
            ),
            ("/v2/prompts", "[1, 2]", 400, "body"),
            ("/v2/prompts", "{not json", 400, "body"),
            ("/v2/prompts/p/versions", {"model": "placeholder/x"}, 400, "template"),
            ("/v2/prompts/missing/versions", {"template": "t"}, 404, "id"),
        ]
        for path, body, status, param in cases:
            content = body if isinstance(body, str) else orjson.dumps(body).decode()
            r = http.post(path, content=content, headers={"content-type": "application/json"})
            assert r.status_code == status, (path, body, r.text)
            assert r.json()["error"]["param"] == param, (body, r.text)
        assert http.get("/v2/prompts/missing").status_code == 404
        assert http.get("/v2/prompts/p/versions/9").status_code == 404
        assert http.get("/v2/prompts/p/versions/x").status_code == 400
        assert http.get("/v2/prompts/q").status_code == 404  # nothing was created by the 400s


def test_malformed_version_and_ids_in_the_path(
    make_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` raises, and SQLite cannot bind a 20-digit int:
    both were 500s. Not digits is a 400 naming ``version``; a number no version has is a 404."""
    with live_gateway(make_config()) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        assert http.post("/v2/prompts", json={"id": "p", "template": "t"}).status_code == 201
        for raw in ("%C2%B2", "%D9%A1", "-1", "1.0", "LATEST", "%00"):
            r = http.get(f"/v2/prompts/p/versions/{raw}")
            assert r.status_code == 400, (raw, r.text)
            assert r.json()["error"]["param"] == "version", raw
            assert r.json()["error"]["code"] == "invalid_request_body", raw
        for raw in ("0", "2", "2147483648", "9" * 20, "9" * 5000):
            r = http.get(f"/v2/prompts/p/versions/{raw}")
            assert r.status_code == 404, (raw[:30], r.text)
            assert r.json()["error"]["param"] == "version", raw[:30]
        assert http.get("/v2/prompts/p/versions/0001").json()["version"] == 1
        for path in ("/v2/prompts/%00", "/v2/prompts/%00/versions", f"/v2/prompts/{'p' * 257}"):
            r = http.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path
    assert not [rec for rec in caplog.records if rec.exc_info], "a traceback was logged"


def test_new_version_is_used_at_once_by_latest(make_config: Any) -> None:
    with live_gateway(make_config()) as gw, httpx.Client(base_url=gw.url, timeout=30) as http:
        http.post(
            "/v2/prompts",
            json={"id": "p", "template": "{{input}}", "parameters": {"size": "32x32"}},
        )
        body = {
            "model": "placeholder/a",
            "prompt": "x",
            "orq": {"prompt": {"id": "p", "version": "latest"}},
        }
        r = http.post(GEN, json=body)
        assert r.status_code == 200
        http.post(
            "/v2/prompts/p/versions",
            json={"template": "{{input}}", "parameters": {"size": "16x16"}},
        )
        r = http.post(GEN, json=body)  # the cached v1 was invalidated by the new version
        trace = http.get(f"/v2/traces/{r.headers['x-orq-trace-id']}").json()
        assert (trace["prompt_version"], trace["size"]) == (2, "16x16")


def test_prompt_template_and_defaults_reach_the_provider(make_config: Any) -> None:
    """Library use: the rendered prompt is what the provider receives."""
    from imagegate.providers.placeholder import render

    async def run() -> tuple[bytes, str]:
        async with Gateway(make_config()) as gw:
            await gw.control.store.create_prompt("default", "tpl", None, None, 0.0)
            await gw.control.store.add_prompt_version(
                "default",
                "tpl",
                "poster: {{input}}!",
                "placeholder/poster",
                {"output_format": "png"},
                0.0,
            )
            resp = await gw.generate(
                model="placeholder/x",
                prompt="fox",
                size="32x32",
                response_format="b64_json",
                orq={"prompt": {"id": "tpl"}},
            )
            return base64.b64decode(resp.data[0]["b64_json"]), resp.model or ""

    data, model = asyncio.run(run())
    assert model == "placeholder/poster"
    assert data == render("poster:poster: fox!", (32, 32), 0, None, "png")


@pytest.fixture
def config_file(tmp_path: Path, database_url: str | None) -> Path:
    path = tmp_path / "imagegate.yaml"
    settings: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "storage": {"path": str(tmp_path / "blobs")},
    }
    if database_url is not None:
        settings["database_url"] = database_url
    path.write_text(yaml.safe_dump(settings))
    return path


def test_cli_prompts_and_traces(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ["--config", str(config_file)]
    assert (
        main(
            [
                "prompts",
                *cfg,
                "create",
                "--id",
                "cli",
                "--name",
                "From CLI",
                "--template",
                "cli {{input}}",
                "--param",
                "n=2",
                "--param",
                "size=32x32",
            ]
        )
        == 0
    )
    created = orjson.loads(capsys.readouterr().out)
    assert created["latest"]["parameters"] == {"n": 2, "size": "32x32"}
    assert (
        main(
            [
                "prompts",
                *cfg,
                "add-version",
                "cli",
                "--template",
                "v2 {{input}}",
                "--model",
                "placeholder/two",
            ]
        )
        == 0
    )
    assert orjson.loads(capsys.readouterr().out)["version"] == 2
    assert main(["prompts", *cfg, "create", "--id", "cli", "--template", "x"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (
        main(["prompts", *cfg, "add-version", "cli", "--template", "t", "--param", "colour=red"])
        == 1
    )
    assert "parameters.colour" in capsys.readouterr().err
    assert main(["prompts", *cfg, "list"]) == 0
    out = capsys.readouterr().out
    assert "cli" in out and "From CLI" in out
    assert main(["prompts", *cfg, "show", "cli"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert main(["prompts", *cfg, "show", "cli", "--version", "1"]) == 0
    assert orjson.loads(capsys.readouterr().out)["template"] == "cli {{input}}"
    assert main(["prompts", *cfg, "show", "nope"]) == 1

    async def traffic() -> list[str]:
        ids = []
        async with Gateway(load_config(config_file, env={})) as gw:
            for prompt in ("one", "two"):
                r = await gw.generate(
                    model="placeholder/a",
                    prompt=prompt,
                    size="16x16",
                    name="cli-run",
                    identity={"id": "cli-user"},
                )
                ids.append(r.trace_id)
        return ids

    ids = asyncio.run(traffic())
    capsys.readouterr()
    assert main(["traces", *cfg]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["TIME", "(UTC)", "ID", "NAME"]
    assert [line.split()[2] for line in lines[1:]] == ids[::-1]  # newest first
    assert all("cli-run" in line and "cli-user" in line and "$0.0000" in line for line in lines[1:])
    assert main(["traces", *cfg, "--json", "--limit", "1", "--identity", "cli-user"]) == 0
    assert [t["id"] for t in orjson.loads(capsys.readouterr().out)] == [ids[1]]
    assert main(["traces", *cfg, "--status", "bogus"]) == 2


def test_prompt_parameters_are_the_tables_prompt_rows() -> None:
    """A stored version may default exactly the parameters the request table marks for
    prompts, each checked as the table types it (none re-declared for prompts)."""
    from imagegate.api.prompts import PromptParameters, PromptVersionBody, validate
    from imagegate.errors import InvalidRequest
    from imagegate.request import PROMPT_PARAMS

    assert tuple(PromptParameters.model_fields) == PROMPT_PARAMS
    body = {"template": "t", "parameters": {"style": "natural", "output_format": "webp"}}
    assert validate(PromptVersionBody, body).params() == body["parameters"]
    for bad in ({"style": "loud"}, {"output_format": "gif"}, {"unknown": 1}):
        with pytest.raises(InvalidRequest):
            validate(PromptVersionBody, {"template": "t", "parameters": bad})
