"""Request limits (``limits:``): every bound is a 400 naming its param, before any work.

Driven over real HTTP against the placeholder provider (no upstream needed). "Before any
work" is checked on the trace the refusal leaves behind: no attempts, no skipped candidates,
and nothing queued for the control plane (no identity or thread rows appear).
"""

from __future__ import annotations

import concurrent.futures
import random
from typing import Any

import httpx
import orjson
import pytest
from live import GEN, LiveGateway, live_gateway, post

from imagegate.config import LimitsConfig
from imagegate.routing.plan import weighted_order


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "placeholder/x", "prompt": "a fox", "size": "64x64", **extra}


def refused(gw: LiveGateway, payload: dict[str, Any], param: str) -> dict[str, Any]:
    r = post(gw, GEN, json=payload)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param, err
    assert err["code"] == "invalid_request_body"
    return dict(r.headers)


def trace(gw: LiveGateway, trace_id: str) -> dict[str, Any]:
    r = httpx.get(f"{gw.url}/v2/traces/{trace_id}", timeout=10)  # reads flush the writer first
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from imagegate.config import load_config

    tmp = tmp_path_factory.mktemp("limits")
    config = load_config(
        env={}, overrides={"data_dir": str(tmp), "storage": {"path": str(tmp / "blobs")}}
    )
    with live_gateway(config) as server:
        yield server


def test_twenty_thousand_balanced_models_are_refused_while_health_answers(
    gw: LiveGateway,
) -> None:
    entries = [{"model": f"placeholder/m{i}", "weight": 0.5} for i in range(20_000)]
    payload = body(orq={"load_balancer": {"type": "weight_based", "models": entries}})
    assert len(orjson.dumps(payload)) < LimitsConfig().max_json_bytes  # reaches validation
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        bombs = [pool.submit(post, gw, GEN, json=payload) for _ in range(3)]
        healths = []
        while not all(b.done() for b in bombs):
            healths.append(httpx.get(f"{gw.url}/health", timeout=10).status_code)
        answers = [b.result() for b in bombs]
    assert healths and set(healths) == {200}
    for r in answers:
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == "load_balancer.models"
    seen = trace(gw, answers[0].headers["x-orq-trace-id"])
    assert seen["status"] == 400
    assert seen["attempts"] == [] and seen["skipped"] == []  # refused before any planning


def test_fallbacks_and_total_attempts_are_capped(gw: LiveGateway) -> None:
    limits = LimitsConfig()
    many = [{"model": f"placeholder/f{i}"} for i in range(limits.max_fallbacks + 1)]
    refused(gw, body(fallbacks=many), "fallbacks")
    refused(gw, body(orq={"fallbacks": many}), "fallbacks")
    # 1 + 9 models with 4 attempts each = 40 > 32, each list within its own cap.
    nine = [{"model": f"placeholder/f{i}"} for i in range(9)]
    refused(gw, body(orq={"fallbacks": nine, "retry": {"count": 3}}), "retry.count")
    # The same models written twice count once: 4 distinct models x 6 attempts = 24 is fine.
    twice = [{"model": f"placeholder/f{i % 3}"} for i in range(6)]
    r = post(gw, GEN, json=body(orq={"fallbacks": twice, "retry": {"count": 5}}))
    assert r.status_code == 200, r.text


def test_text_fields_are_capped(gw: LiveGateway) -> None:
    limits = LimitsConfig()
    refused(gw, body(prompt="x" * (limits.max_prompt_chars + 1)), "prompt")
    long_name = "n" * (limits.max_name_chars + 1)
    refused(gw, body(orq={"name": long_name}), "name")
    refused(gw, body(model="placeholder/" + long_name), "model")
    refused(gw, body(user=long_name), "user")
    refused(gw, body(orq={"thread": {"id": long_name}}), "thread.id")
    refused(gw, body(orq={"identity": {"id": long_name}}), "identity.id")
    refused(gw, body(orq={"prompt": {"id": long_name}}), "prompt.id")
    # At the limit is fine.
    r = post(gw, GEN, json=body(prompt="x" * limits.max_prompt_chars))
    assert r.status_code == 200, r.text


def test_metadata_tags_and_identity_metadata_are_capped(gw: LiveGateway) -> None:
    limits = LimitsConfig()
    keys = {f"k{i}": "v" for i in range(limits.max_metadata_keys + 1)}
    refused(gw, body(metadata=keys), "metadata")
    heavy = {f"k{i}": "v" * 500 for i in range(40)}  # 40 keys, ~20 KB
    refused(gw, body(metadata=heavy), "metadata")
    tags = [f"t{i}" for i in range(limits.max_tags + 1)]
    refused(gw, body(orq={"thread": {"id": "t", "tags": tags}}), "thread.tags")
    refused(gw, body(orq={"identity": {"id": "i", "tags": tags}}), "identity.tags")
    refused(gw, body(orq={"identity": {"id": "i", "tags": ["x" * 129]}}), "identity.tags[0]")
    blob = [{"k": "v" * (limits.max_identity_metadata_bytes + 1)}]
    refused(gw, body(orq={"identity": {"id": "i", "metadata": blob}}), "identity.metadata")
    # Nothing of the refused identities or threads reached the control plane.
    with httpx.Client(base_url=gw.url, timeout=10) as http:
        assert http.get("/v2/identities/i").status_code == 404
        assert http.get("/v2/threads/t").status_code == 404


def test_a_template_bomb_is_refused_before_it_is_expanded(gw: LiveGateway) -> None:
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        template = "{{input}}" * 3_000
        r = http.post("/v2/prompts", json={"id": "bomb", "template": template})
        assert r.status_code == 201, r.text
        prompt = "p" * 30_000  # within max_prompt_chars; expands to 90 M characters
        r = http.post(GEN, json=body(prompt=prompt, orq={"prompt": {"id": "bomb"}}))
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["param"] == "orq.prompt" and "90000000" in err["message"]
        # A short prompt through the same template stays within the expanded cap.
        r = http.post(GEN, json=body(prompt="ab", orq={"prompt": {"id": "bomb"}}))
        assert r.status_code == 200, r.text


def test_limits_are_configurable(make_config: Any) -> None:
    config = make_config(limits={"max_fallbacks": 1, "max_prompt_chars": 5})
    with live_gateway(config) as server:
        refused(server, body(fallbacks=[{"model": "placeholder/a"}] * 2), "fallbacks")
        refused(server, body(prompt="abcdef"), "prompt")
        assert post(server, GEN, json=body(prompt="abcde")).status_code == 200


def test_weighted_order_is_fast_enough_to_be_linearithmic() -> None:
    """20,000 weights order in one sort (the old draw was quadratic): count the rng calls."""

    class Counting(random.Random):
        calls = 0

        def random(self) -> float:
            Counting.calls += 1
            return super().random()

    weighted = [(f"m{i}", 0.001 + (i % 7) / 10) for i in range(20_000)]
    order = weighted_order(weighted, Counting(3))
    assert sorted(order) == sorted(m for m, _ in weighted)
    assert Counting.calls == len(weighted)  # one draw per model, not one scan per draw


def test_odd_digits_and_huge_numbers_are_400s_not_500s(gw: LiveGateway) -> None:
    """Found by probing beside the fuzzer: each was a 500 with a traceback."""
    r = post(gw, GEN, json=body(size="\u00b2x\u00b2"))
    assert r.status_code == 400, r.text  # the placeholder's own "invalid size", not int("²")
    for version in ("99999999999999999999", "9" * 5000, "\u00b2", 0, 2**31):
        refused(gw, body(orq={"prompt": {"id": "p", "version": version}}), "orq.prompt.version")
    refused(gw, body(seed=10**30), "seed")
    with httpx.Client(base_url=gw.url, timeout=10) as http:
        bad = {"id": "q", "template": "t", "parameters": {"seed": 10**30}}
        r = http.post("/v2/prompts", json=bad)
        assert r.status_code == 400 and r.json()["error"]["param"] == "parameters.seed", r.text
        bad = {"id": "q", "template": "t", "parameters": {"size": "\u0661\u0662x\u0661\u0662"}}
        r = http.post("/v2/prompts", json=bad)
        assert r.status_code == 400 and r.json()["error"]["param"] == "parameters.size", r.text
        r = http.request("DELETE", GEN)
        assert r.status_code == 405 and r.headers["allow"] == "POST"
