"""``Idempotency-Key`` on the image POSTs, over real HTTP: a gateway on a free port in front of
a fake OpenAI that holds its answers until the test opens its gate (``gated.py``).

What is proved: a client that times out and retries gets the one image; concurrent requests
with one key make one upstream call and get the same bytes; a replay is byte for byte the
first answer (base64 rebuilt from the blob store, URLs as signed) with its own trace; another
body under the key is a 422; 4xx answers are kept, 5xx are not; keys are per workspace; a
hostile key is a 400; a dead Redis is a 503 for keyed requests only. Records live in the
control-plane store here (SQLite and PostgreSQL); ``test_idempotency_fleet.py`` covers Redis
and several gateway processes.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.openai import Reply
from gated import GatedOpenAI, metric
from imagekit import png
from live import EDITS, GEN, LiveGateway, free_port, live_gateway
from openai import OpenAI
from orq_ai_sdk import Orq
from waiting import wait_until

BODY = {"model": "openai/gpt-image-1", "prompt": "a fox in the snow"}  # answered in base64
ADMIN = "sk-idem-admin"
World = tuple[LiveGateway, GatedOpenAI]


def keyed(
    gw: LiveGateway, key: str, body: dict[str, Any] | None = None, **kw: Any
) -> httpx.Response:
    headers = {"Idempotency-Key": key, **kw.pop("headers", {})}
    kw.setdefault("timeout", 60)
    return httpx.post(f"{gw.url}{GEN}", json=body or BODY, headers=headers, **kw)


def trace_of(gw: LiveGateway, trace_id: str, headers: dict[str, str] | None = None) -> Any:
    """The trace once the batching writer has stored it."""

    def read() -> Any:
        r = httpx.get(f"{gw.url}/v2/traces/{trace_id}", headers=headers or {}, timeout=10)
        return r.json() if r.status_code == 200 else None

    return wait_until(read, f"trace {trace_id}")


@pytest.fixture
def open_world(make_config: Any) -> Iterator[Callable[..., World]]:
    with GatedOpenAI() as fake, contextlib.ExitStack() as stack:

        def start(**overrides: Any) -> World:
            config = make_config(providers=fake.providers(), **overrides)
            gw = stack.enter_context(live_gateway(config))
            fake.release()
            return gw, fake

        yield start
        assert fake.violations == []


@pytest.fixture
def world(open_world: Callable[..., World]) -> World:
    return open_world()


@pytest.fixture
def db_world(open_world: Callable[..., World], database_url: str | None) -> World:
    """The same, once on SQLite and once on PostgreSQL."""
    return open_world(database_url=database_url)


def test_a_client_that_times_out_and_retries_gets_the_one_image(db_world: World) -> None:
    gw, fake = db_world
    fake.hold()  # the upstream call lasts until the test says so
    with pytest.raises(httpx.ReadTimeout):  # the client's timeout is the only clock here
        keyed(gw, "order-17", timeout=httpx.Timeout(30, read=1.0))
    wait_until(lambda: fake.arrived == 1, "the first call upstream")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        retry = pool.submit(keyed, gw, "order-17")
        wait_until(lambda: metric(gw.url, "imagegate_idempotency_waiting") == 1, "retry waits")
        fake.release()
        answer = retry.result()
    assert answer.status_code == 200, answer.text
    assert answer.headers["idempotent-replayed"] == "true"
    assert base64.b64decode(answer.json()["data"][0]["b64_json"]) == png(0)
    assert fake.arrived == len(fake.requests) == 1
    again = keyed(gw, "order-17")  # after it finished: the same bytes, still one call
    assert again.status_code == 200 and again.content == answer.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-orq-model"] == answer.headers["x-orq-model"] == "openai/gpt-image-1"
    assert again.headers["x-orq-trace-id"] != answer.headers["x-orq-trace-id"]
    assert len(fake.requests) == 1
    replay = trace_of(gw, again.headers["x-orq-trace-id"])
    assert replay["cost_usd"] == 0 and replay["attempts"] == [] and replay["status"] == 200
    [note] = replay["notes"]
    assert note.startswith("replay of ")
    original = trace_of(gw, note.split()[2])  # the request that ran, whose client had left
    assert original["status"] == 200 and len(original["attempts"]) == 1
    assert original["cost_usd"] and original["output_blobs"] == replay["output_blobs"]


def test_two_concurrent_requests_with_one_key_make_one_upstream_call(world: World) -> None:
    gw, fake = world
    fake.hold()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(keyed, gw, "twins")
        wait_until(lambda: fake.arrived == 1, "the first call upstream")
        second = pool.submit(keyed, gw, "twins")
        wait_until(lambda: metric(gw.url, "imagegate_idempotency_waiting") == 1, "second waits")
        fake.release()
        a, b = first.result(), second.result()
    assert a.status_code == b.status_code == 200
    assert a.content == b.content  # identical bodies, byte for byte
    assert "idempotent-replayed" not in a.headers and b.headers["idempotent-replayed"] == "true"
    assert fake.arrived == len(fake.requests) == 1


def test_the_key_with_another_body_is_422(db_world: World) -> None:
    gw, fake = db_world
    fake.hold()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(keyed, gw, "k-reused")
        wait_until(lambda: fake.arrived == 1, "the first call upstream")
        running = keyed(gw, "k-reused", {**BODY, "prompt": "a hare"})  # while it runs
        fake.release()
        assert first.result().status_code == 200
    finished = keyed(gw, "k-reused", {**BODY, "prompt": "a hare"})  # after it finished
    for r in (running, finished):
        assert r.status_code == 422, r.text
        assert r.json() == {
            "error": {
                "message": r.json()["error"]["message"],
                "type": "invalid_request_error",
                "param": "Idempotency-Key",
                "code": "idempotency_key_reused",
            }
        }
        assert r.headers["x-orq-trace-id"]
    # a body that differs only in key order or in an absent-vs-1 ``n`` is the same request
    same = keyed(gw, "k-reused", {"prompt": BODY["prompt"], "n": 1, "model": BODY["model"]})
    assert same.status_code == 200 and same.headers["idempotent-replayed"] == "true"
    other_format = keyed(
        gw,
        "k-reused",
        {**BODY, "response_format": "url", "model": "openai/gpt-image-1", "orq": {"name": "x"}},
    )
    assert other_format.status_code == 422
    assert len(fake.requests) == 1


def test_url_answers_are_replayed_byte_for_byte(world: World) -> None:
    gw, fake = world
    body = {"model": "openai/dall-e-2", "prompt": "a fox", "response_format": "url", "n": 2}
    first = keyed(gw, "urls-1", body)
    again = keyed(gw, "urls-1", body)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    for item in again.json()["data"]:
        assert httpx.get(item["url"], timeout=10).content in (png(0), png(1))
    assert len(fake.requests) == 1


def test_base64_sent_with_line_breaks_is_replayed_as_sent(world: World) -> None:
    gw, fake = world
    wrapped = base64.encodebytes(png(3)).decode()  # a newline every 76 characters
    fake.script(Reply(200, {"created": 1700000000, "data": [{"b64_json": wrapped}]}))
    first = keyed(
        gw, "wrapped", {"model": "openai/dall-e-2", "prompt": "x", "response_format": "b64_json"}
    )
    assert first.status_code == 200, first.text
    assert first.json()["data"][0]["b64_json"] == wrapped
    again = keyed(
        gw, "wrapped", {"model": "openai/dall-e-2", "prompt": "x", "response_format": "b64_json"}
    )
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert len(fake.requests) == 1


def test_a_5xx_is_not_kept_and_a_retry_runs_again(world: World) -> None:
    gw, fake = world
    fake.script(Reply(500, {"error": {"message": "upstream broke", "type": "server_error"}}))
    failed = keyed(gw, "flaky")
    assert failed.status_code >= 500, failed.text
    retried = keyed(gw, "flaky")
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
    assert len(fake.requests) == 2
    assert keyed(gw, "flaky").content == retried.content  # the success is kept
    assert len(fake.requests) == 2


def test_a_4xx_is_kept_and_replayed(db_world: World) -> None:
    gw, fake = db_world
    refusal = {
        "message": "your prompt was refused",
        "type": "invalid_request_error",
        "param": "prompt",
        "code": "moderation_blocked",
    }
    fake.script(Reply(400, {"error": refusal}))
    first = keyed(gw, "refused")
    assert first.status_code == 400, first.text
    code = first.json()["error"]["code"]
    assert code == "content_policy_violation"
    again = keyed(gw, "refused")
    assert again.status_code == 400 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(fake.requests) == 1
    trace = trace_of(gw, again.headers["x-orq-trace-id"])
    assert trace["error_code"] == code and trace["notes"][0].startswith("replay of ")


def test_keys_are_scoped_per_workspace(open_world: Callable[..., World]) -> None:
    gw, fake = open_world(api_keys=[ADMIN])
    keys = []
    for ws in ("idem-a", "idem-b"):
        r = httpx.post(
            f"{gw.url}/v2/admin/keys",
            json={"workspace": ws, "name": "app"},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        keys.append({"Authorization": f"Bearer {r.json()['key']}"})
    a = keyed(gw, "shared-key", BODY, headers=keys[0])
    b = keyed(gw, "shared-key", {**BODY, "prompt": "another"}, headers=keys[1])  # not a 422
    assert a.status_code == b.status_code == 200
    assert "idempotent-replayed" not in b.headers
    assert len(fake.requests) == 2
    for key, first, body in ((keys[0], a, BODY), (keys[1], b, {**BODY, "prompt": "another"})):
        again = keyed(gw, "shared-key", body, headers=key)
        assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("k" * 10_000, "characters"),
        ("k" * 256, "characters"),
        ("", "characters"),
        (b"caf\xc3\xa9", "printable ASCII"),
        ("tab\there", "printable ASCII"),
    ],
)
def test_a_hostile_key_is_a_400_naming_the_header(world: World, value: Any, why: str) -> None:
    gw, fake = world
    r = httpx.post(f"{gw.url}{GEN}", json=BODY, headers={"Idempotency-Key": value}, timeout=10)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "Idempotency-Key" and why in error["message"]
    assert error["code"] == "invalid_request_body" and r.headers["x-orq-trace-id"]
    assert fake.requests == []


def test_a_key_on_a_streamed_request_is_a_400(world: World) -> None:
    gw, fake = world
    r = keyed(gw, "streamed", {**BODY, "stream": True})
    assert r.status_code == 400 and r.json()["error"]["param"] == "Idempotency-Key"
    assert fake.requests == []


def test_multipart_edits_compare_uploads_by_digest(world: World) -> None:
    gw, fake = world

    def edit(png: bytes) -> httpx.Response:
        return httpx.post(
            f"{gw.url}{EDITS}",
            headers={"Idempotency-Key": "edit-1"},
            timeout=60,
            data={"model": "openai/gpt-image-1", "prompt": "add a hat"},
            files={"image": ("in.png", png, "image/png")},
        )

    first, again = edit(png(5)), edit(png(5))
    assert first.status_code == 200, first.text
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    other = edit(png(6))
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(fake.requests) == 1


def test_a_flood_of_keys_leaves_small_records_that_expire(world: World, tmp_path: Path) -> None:
    gw, _ = world
    for i in range(60):
        assert keyed(gw, f"flood-{i}").status_code == 200
    image_b64 = base64.b64encode(png(0)).decode()
    with sqlite3.connect(tmp_path / "data" / "imagegate.db") as db:
        rows = db.execute("SELECT answer, expires_at FROM idempotency_keys").fetchall()
    assert len(rows) == 60
    now = time.time()
    for answer, expires_at in rows:
        assert len(answer) < 1024 and image_b64[:40] not in answer  # the image by reference
        assert now < expires_at <= now + 24 * 3600


def test_redis_down_refuses_keyed_requests_only(open_world: Callable[..., World]) -> None:
    gw, fake = open_world(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    refused = keyed(gw, "no-redis")
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "idempotency_unavailable"
    assert refused.headers["retry-after"] == "1"
    plain = httpx.post(f"{gw.url}{GEN}", json=BODY, timeout=60)  # no key: served as ever
    assert plain.status_code == 200
    assert len(fake.requests) == 1
    assert metric(gw.url, 'imagegate_idempotency_total{outcome="unavailable"}') == 1


def test_the_official_clients_send_the_key_as_documented(world: World) -> None:
    """docs/long-calls.md: openai's ``extra_headers``, orq's ``http_headers``."""
    gw, fake = world
    client = OpenAI(api_key="unused", base_url=f"{gw.url}/v2/router", max_retries=0)
    made = [
        client.images.with_raw_response.generate(
            model="openai/gpt-image-1", prompt="a kite", extra_headers={"Idempotency-Key": "sdk-1"}
        )
        for _ in range(2)
    ]
    assert [r.headers.get("idempotent-replayed") for r in made] == [None, "true"]
    assert made[0].parse().data[0].b64_json == made[1].parse().data[0].b64_json
    with Orq(api_key="unused", server_url=gw.url) as orq:
        answers = [
            orq.router.images.generations.create(
                model="openai/gpt-image-1",
                prompt="a kite on orq",
                http_headers={"Idempotency-Key": "sdk-2"},
            )
            for _ in range(2)
        ]
    assert answers[0] == answers[1]
    assert len(fake.requests) == 2
