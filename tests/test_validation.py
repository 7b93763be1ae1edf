"""Every range rule of docs/api.md (Validation) → 400 invalid_request_body naming the field.

Routing rules are checked top-level and under ``orq``, in JSON (generations) and in
multipart (edits, as JSON parts the way the orq SDK sends them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from imagekit import solid
from live import LiveGateway, live_gateway

from imagegate.config import load_config

LB = {"type": "weight_based", "models": [{"model": "placeholder/a", "weight": 0.5}]}
# (field, bad value, param relative to where the field sits)
ROUTING_RULES: list[tuple[str, Any, str]] = [
    ("retry", {"count": 0}, "retry.count"),
    ("retry", {"count": 6}, "retry.count"),
    ("retry", {"count": 2.5}, "retry.count"),
    ("retry", {"on_codes": []}, "retry.on_codes"),
    ("retry", {"on_codes": [99]}, "retry.on_codes[0]"),
    ("retry", {"on_codes": [429, 600]}, "retry.on_codes[1]"),
    ("cache", {"type": "exact_match", "ttl": 0}, "cache.ttl"),
    ("cache", {"type": "exact_match", "ttl": 259_201}, "cache.ttl"),
    ("cache", {"type": "semantic"}, "cache.type"),
    ("cache", {"ttl": 60}, "cache.type"),
    (
        "load_balancer",
        {**LB, "models": [{"model": "placeholder/a", "weight": 0.0009}]},
        "load_balancer.models[0].weight",
    ),
    (
        "load_balancer",
        {**LB, "models": [{"model": "placeholder/a", "weight": 1.01}]},
        "load_balancer.models[0].weight",
    ),
    (
        "load_balancer",
        [{"type": "weight_based", "model": "placeholder/a", "weight": 2}],
        "load_balancer[0].weight",
    ),
    ("load_balancer", {"type": "round_robin", "models": LB["models"]}, "load_balancer.type"),
    ("load_balancer", {"type": "weight_based", "models": []}, "load_balancer.models"),
    ("timeout", {"call_timeout": 0}, "timeout.call_timeout"),
    ("timeout", {}, "timeout.call_timeout"),
    ("fallback_on_codes", [399], "fallback_on_codes[0]"),
    ("fallback_on_codes", [500, 600], "fallback_on_codes[1]"),
    ("fallback_on_codes", list(range(400, 421)), "fallback_on_codes"),
    ("fallback_on_codes", [500, 500], "fallback_on_codes"),
    ("fallbacks", [{"model": ""}], "fallbacks[0].model"),
    ("identity", {"id": "u1", "email": "not-an-email"}, "identity.email"),
    ("identity", {"display_name": "no id"}, "identity.id"),
    ("contact", {"id": "u1", "email": "a@b@c"}, "contact.email"),
]
# request fields (top level only)
BODY_RULES: list[tuple[str, Any, str]] = [
    ("n", 0, "n"),
    ("n", 11, "n"),
    ("n", 1.5, "n"),
    ("output_compression", -1, "output_compression"),
    ("output_compression", 101, "output_compression"),
    ("metadata", {"k": "x" * 513}, "metadata.k"),
    ("quality", "ultra", "quality"),
    ("response_format", "png", "response_format"),
    ("output_format", "gif", "output_format"),
    ("background", "none", "background"),
]
GEN_ONLY_RULES: list[tuple[str, Any, str]] = [
    ("style", "bright", "style"),
    ("moderation", "high", "moderation"),
]


PNG = solid(8, (1, 2, 3))


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp: Path = tmp_path_factory.mktemp("validation")
    config = load_config(env={}, overrides={"data_dir": str(tmp), "storage": {"path": str(tmp)}})
    with live_gateway(config) as server:
        yield server


def _assert_400(r: httpx.Response, param: str) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["type"], error["param"]) == (
        "invalid_request_body",
        "invalid_request_error",
        param,
    ), error
    assert "Traceback" not in r.text


def _post_json(gw: LiveGateway, body: dict[str, Any]) -> httpx.Response:
    base = {"model": "placeholder/x", "prompt": "p", "size": "16x16"}
    return httpx.post(f"{gw.url}/v2/router/images/generations", json={**base, **body})


def _post_form(
    gw: LiveGateway, op: str, fields: dict[str, Any], json_parts: dict[str, Any]
) -> httpx.Response:
    data = {"model": "placeholder/x", "prompt": "p", "size": "16x16", **fields}
    files: list[tuple[str, Any]] = [("image", ("a.png", PNG, "image/png"))]
    files += [(k, (None, orjson.dumps(v), "application/json")) for k, v in json_parts.items()]
    return httpx.post(f"{gw.url}/v2/router/images/{op}", data=data, files=files)


@pytest.mark.parametrize(("field", "value", "param"), ROUTING_RULES)
@pytest.mark.parametrize("placement", ["top", "orq"])
def test_routing_rule_json(
    gw: LiveGateway, field: str, value: Any, param: str, placement: str
) -> None:
    body = {field: value} if placement == "top" else {"orq": {field: value}}
    _assert_400(_post_json(gw, body), param if placement == "top" else f"orq.{param}")


@pytest.mark.parametrize(("field", "value", "param"), ROUTING_RULES)
@pytest.mark.parametrize("placement", ["top", "orq"])
def test_routing_rule_multipart(
    gw: LiveGateway, field: str, value: Any, param: str, placement: str
) -> None:
    if placement == "top" and field == "fallback_on_codes":
        fields = {"fallback_on_codes[]": [str(v) for v in value]}
        r = _post_form(gw, "edits", fields, {})
    else:
        parts = {field: value} if placement == "top" else {"orq": {field: value}}
        r = _post_form(gw, "edits", {}, parts)
    _assert_400(r, param if placement == "top" else f"orq.{param}")


@pytest.mark.parametrize(("field", "value", "param"), BODY_RULES + GEN_ONLY_RULES)
def test_body_rule_json(gw: LiveGateway, field: str, value: Any, param: str) -> None:
    _assert_400(_post_json(gw, {field: value}), param)


@pytest.mark.parametrize(("field", "value", "param"), BODY_RULES)
def test_body_rule_multipart(gw: LiveGateway, field: str, value: Any, param: str) -> None:
    if isinstance(value, dict):
        r = _post_form(gw, "edits", {}, {field: value})
    else:
        r = _post_form(gw, "edits", {field: str(value)}, {})
    _assert_400(r, param)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"size": "1024x1792"}, "size"),
        ({"n": "11.0"}, "n"),
        ({"n": "two"}, "n"),
        ({"response_format": "gif"}, "response_format"),
    ],
)
def test_variation_rules(gw: LiveGateway, fields: dict[str, str], param: str) -> None:
    data = {"model": "placeholder/x", **fields}
    files = {"image": ("a.png", PNG, "image/png")}
    r = httpx.post(f"{gw.url}/v2/router/images/variations", data=data, files=files)
    _assert_400(r, param)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "p"}, "model"),
        ({"model": "placeholder/x"}, "prompt"),
        ({"model": "placeholder/x", "prompt": ""}, "prompt"),
        ({"model": "placeholder/x", "prompt": 5}, "prompt"),
    ],
)
def test_required_fields(gw: LiveGateway, body: dict[str, Any], param: str) -> None:
    r = httpx.post(f"{gw.url}/v2/router/images/generations", json=body)
    _assert_400(r, param)


def test_edge_values_are_accepted(gw: LiveGateway) -> None:
    """The bounds themselves are valid, in every encoding the SDKs use."""
    edge = {
        "n": 10.0,
        "output_compression": 100,
        "metadata": {"k": "x" * 512},
        "retry": {"count": 5.0, "on_codes": [100.0, 599]},
        "cache": {"type": "exact_match", "ttl": 259_200.0},
        "load_balancer": {
            "type": "weight_based",
            "models": [{"model": "placeholder/a", "weight": 0.001}],
        },
        "timeout": {"call_timeout": 60_000},
        "fallback_on_codes": list(range(400, 420)),
        "identity": {"id": "u", "email": "a@example.com"},
        "size": None,
        "quality": None,
    }
    r = _post_json(gw, {**edge, "output_format": "jpeg", "size": "16x16"})
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == 10
    form = {"n": "1.0", "fallback_on_codes[]": ["400", "599"], "output_compression": "0"}
    r = _post_form(gw, "edits", form, {"retry": {"count": 1.0}, "orq": {"cache": edge["cache"]}})
    assert r.status_code == 200, r.text
