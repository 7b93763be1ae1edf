"""Two workspaces driven by the official clients: the orq SDK for one team, the openai SDK for
the other, with the same identity, thread and prompt ids. Neither sees or changes the other's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.openai import FakeOpenAI
from live import LiveGateway, live_gateway
from openai import OpenAI
from orq_ai_sdk import Orq

ADMIN = "sk-sdk-admin"


@pytest.fixture
def world(make_config: Any) -> Iterator[tuple[LiveGateway, FakeOpenAI, str, str]]:
    with FakeOpenAI() as fake:
        config = make_config(api_keys=[ADMIN], providers=fake.providers())
        with live_gateway(config) as gw:
            admin = {"Authorization": f"Bearer {ADMIN}"}
            keys = []
            for ws in ("team-a", "team-b"):
                r = httpx.post(
                    f"{gw.url}/v2/admin/keys",
                    headers=admin,
                    timeout=10,
                    json={"workspace": ws, "name": f"{ws}-app"},
                )
                assert r.status_code == 201, r.text
                keys.append(r.json()["key"])
            yield gw, fake, keys[0], keys[1]


def read(gw: LiveGateway, key: str, path: str) -> httpx.Response:
    return httpx.get(f"{gw.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_official_clients_in_two_workspaces(
    world: tuple[LiveGateway, FakeOpenAI, str, str],
) -> None:
    gw, fake, key_a, key_b = world
    for key, template in ((key_a, "A: {{input}}"), (key_b, "B: {{input}}")):
        r = httpx.post(
            f"{gw.url}/v2/prompts",
            headers={"Authorization": f"Bearer {key}"},
            json={"id": "p1", "template": template},
            timeout=10,
        )
        assert r.status_code == 201, r.text
    # The orq SDK's generations model carries identity but drops thread and prompt, so those
    # ride on the openai SDK's extra_body (the same JSON the gateway reads either way).
    with Orq(api_key=key_a, server_url=gw.url) as orq:
        a = orq.router.images.generations.create(
            model="openai/dall-e-2",
            prompt="fox",
            size="256x256",
            orq={"identity": {"id": "alice", "email": "alice@a.example"}},
        )
    answers = []
    for key, team, prompt in ((key_a, "a", "hare"), (key_b, "b", "owl")):
        client = OpenAI(api_key=key, base_url=f"{gw.url}/v2/router")
        answers.append(
            client.images.generate(
                model="openai/dall-e-2",
                prompt=prompt,
                size="256x256",
                extra_body={
                    "orq": {
                        "thread": {"id": "t1", "tags": [team]},
                        "prompt": {"id": "p1"},
                        **(
                            {"identity": {"id": "alice", "email": "alice@b.example"}}
                            if team == "b"
                            else {}
                        ),
                    }
                },
            )
        )
    assert a.data and all(x.data for x in answers)
    # Each workspace's prompt was applied to its own requests.
    assert [r.json["prompt"] for r in fake.requests] == ["fox", "A: hare", "B: owl"]
    # Same ids, different rows: each team reads its own alice and t1.
    assert read(gw, key_a, "/v2/identities/alice").json()["email"] == "alice@a.example"
    assert read(gw, key_b, "/v2/identities/alice").json()["email"] == "alice@b.example"
    assert read(gw, key_a, "/v2/threads/t1").json()["tags"] == ["a"]
    assert read(gw, key_b, "/v2/threads/t1").json()["tags"] == ["b"]
    traces_a = read(gw, key_a, "/v2/traces").json()["data"]
    traces_b = read(gw, key_b, "/v2/traces").json()["data"]
    assert (len(traces_a), len(traces_b)) == (2, 1)
    assert not {t["id"] for t in traces_a} & {t["id"] for t in traces_b}
    # A trace of one workspace is a 404 for the other, exactly like a missing one.
    crossed = read(gw, key_b, f"/v2/traces/{traces_a[0]['id']}")
    missing = read(gw, key_b, "/v2/traces/01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert crossed.status_code == missing.status_code == 404
    assert crossed.json()["error"]["code"] == missing.json()["error"]["code"]
    # The operator's admin key sees team-a's trace when it asks for team-a.
    admin = httpx.get(
        f"{gw.url}/v2/traces/{traces_a[0]['id']}",
        timeout=10,
        headers={"Authorization": f"Bearer {ADMIN}", "x-imagegate-workspace": "team-a"},
    )
    assert admin.status_code == 200
    # A member naming the other workspace is refused outright.
    sneaky = httpx.get(
        f"{gw.url}/v2/traces",
        timeout=10,
        headers={"Authorization": f"Bearer {key_b}", "x-imagegate-workspace": "team-a"},
    )
    assert sneaky.status_code == 403
