"""``GET /v1/models`` and ``GET /v1/models/{id}`` (every image-route prefix) through the official
openai SDK, sync and async: OpenAI's list shape, the aliases and the provider models the
gateway serves, 404 in OpenAI's error shape, auth as the image routes."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fakes.openai import GATEWAY_KEY as KEY
from fakes.openai import FakeOpenAI
from live import LiveGateway, live_gateway

from imagegate.api.openapi import PREFIXES
from imagegate.config import load_config
from imagegate.providers.registry import SPECS

AUTH = {"authorization": f"Bearer {KEY}"}
ALIASES: dict[str, Any] = {
    "house": {"model": "openai/gpt-image-1", "params": {"output_format": "webp"}},
    "mix": {"models": ["openai/dall-e-3", "placeholder/mix"], "strategy": "fallback"},
}
_module, _, _attr = SPECS["bfl"].partition(":")
BFL_MODELS = getattr(importlib.import_module(_module), _attr).models.names()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp = tmp_path_factory.mktemp("models")
    with FakeOpenAI() as fake:
        providers = {**fake.providers(), "bfl": {"api_key": "k"}, "stability": {"enabled": False}}
        config = load_config(
            env={},
            overrides={
                "data_dir": str(tmp),
                "storage": {"path": str(tmp / "blobs")},
                "api_keys": [KEY],
                "providers": providers,
                "models": ALIASES,
            },
        )
        with live_gateway(config) as server:
            yield server


@pytest.fixture
def client(gw: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=gw.url + "/v1", max_retries=0) as c:
        yield c


def test_list_has_openais_shape_aliases_and_provider_models(client: openai.OpenAI) -> None:
    page = client.models.list()
    by_id = {m.id: m for m in page.data}
    assert page.object == "list" and all(m.object == "model" for m in page.data)
    expected = {
        "house",
        "mix",
        "openai/dall-e-2",
        "openai/dall-e-3",
        "openai/gpt-image-1",
        "openai/gpt-image-2",
        "placeholder/mix",
        *(f"bfl/{name}" for name in BFL_MODELS),
    }
    assert expected <= set(by_id)
    assert not any(i.startswith("stability/") for i in by_id)  # disabled: not served here
    # the placeholder takes any name: only the one the config names is listed
    assert [i for i in by_id if i.startswith("placeholder/")] == ["placeholder/mix"]
    dalle3 = by_id["openai/dall-e-3"].model_dump()
    assert (dalle3["owned_by"], dalle3["kind"]) == ("openai", "model")
    assert dalle3["operations"] == ["generations"] and dalle3["output_formats"] == ["png"]
    house = by_id["house"].model_dump()
    assert (house["owned_by"], house["kind"], house["models"]) == (
        "imagegate",
        "alias",
        ["openai/gpt-image-1"],
    )
    assert house["params"] == {"output_format": "webp"} and house["output_formats"] == ["webp"]
    assert house["operations"] == ["edits", "generations"]
    mix = by_id["mix"].model_dump()
    assert mix["strategy"] == "fallback" and mix["models"] == ["openai/dall-e-3", "placeholder/mix"]
    assert isinstance(dalle3["created"], int)


async def test_async_list_and_retrieve(gw: LiveGateway) -> None:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=gw.url + "/v1", max_retries=0) as c:
        ids = [m.id async for m in c.models.list()]
        one = await c.models.retrieve("openai/gpt-image-1")
    assert "openai/gpt-image-1" in ids and "house" in ids
    assert one.id == "openai/gpt-image-1" and one.owned_by == "openai"


def test_retrieve_ids_with_slashes_aliases_and_bare_names(client: openai.OpenAI) -> None:
    assert client.models.retrieve("openai/dall-e-3").id == "openai/dall-e-3"
    assert client.models.retrieve("house").model_dump()["kind"] == "alias"
    bare = client.models.retrieve("dall-e-3").model_dump()  # openai is the default provider
    assert (bare["id"], bare["resolves_to"]) == ("dall-e-3", "openai/dall-e-3")


@pytest.mark.parametrize("model", ["nope", "openai/no-such-model", "stability/sd3", "x" * 10_000])
def test_unknown_ids_are_404_in_openais_error_shape(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve(model)
    body = info.value.body
    assert isinstance(body, dict)
    assert (body["code"], body["type"], body["param"]) == (
        "model_not_found",
        "invalid_request_error",
        "model",
    )
    assert len(body["message"]) < 200


def test_every_prefix_serves_the_same_list(gw: LiveGateway) -> None:
    lists = [httpx.get(f"{gw.url}{p}/models", headers=AUTH, timeout=10) for p in PREFIXES]
    assert all(r.status_code == 200 for r in lists)
    assert len({r.content for r in lists}) == 1
    one = httpx.get(f"{gw.url}/v2/router/models/openai%2Fdall-e-3", headers=AUTH, timeout=10)
    assert one.status_code == 200 and one.json()["id"] == "openai/dall-e-3"


def test_auth_as_the_image_routes(gw: LiveGateway) -> None:
    for path in ("/v1/models", "/v1/models/openai/dall-e-3"):
        r = httpx.get(gw.url + path, timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] is not None
        r = httpx.get(gw.url + path, headers={"authorization": "Bearer sk-wrong"}, timeout=10)
        assert r.status_code == 401


def test_workspace_keys_see_the_gateways_models(gw: LiveGateway) -> None:
    """Workspaces have no model allow-list: a member key of another workspace lists the same
    models; naming a workspace it does not belong to is a 403, as on the image routes."""
    made = httpx.post(
        f"{gw.url}/v2/admin/keys",
        headers=AUTH,
        timeout=10,
        json={"workspace": "team-m", "name": "ci", "role": "member"},
    )
    assert made.status_code == 201, made.text
    member = {"authorization": f"Bearer {made.json()['key']}"}
    mine = httpx.get(f"{gw.url}/v1/models", headers=member, timeout=10)
    admins = httpx.get(f"{gw.url}/v1/models", headers=AUTH, timeout=10)
    assert mine.status_code == 200 and mine.json() == admins.json()
    other = {**member, "x-imagegate-workspace": "default"}
    assert httpx.get(f"{gw.url}/v1/models", headers=other, timeout=10).status_code == 403


def test_openai_compatible_lists_only_what_config_names(tmp_path: Path, make_config: Any) -> None:
    config = make_config(
        providers={"mylab": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}},
        models={"lab": "mylab/flux-schnell"},
    )
    with live_gateway(config) as gw:
        ids = {m["id"] for m in httpx.get(f"{gw.url}/v1/models", timeout=10).json()["data"]}
    assert {"lab", "mylab/flux-schnell"} <= ids
    assert not any(i.startswith("mylab/") and i != "mylab/flux-schnell" for i in ids)
