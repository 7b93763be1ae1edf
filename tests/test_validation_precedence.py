"""Where options come from: top level wins, identity wins, null is absent.

The rules: docs/api.md, "Request bodies" and "What the server accepts, and why".
"""

from __future__ import annotations

from typing import Any

import pytest

from imagegate.errors import InvalidRequest
from imagegate.options import build_request
from imagegate.request import ImageRequest

BASE = {"model": "placeholder/x", "prompt": "p"}


def _build(**body: Any) -> ImageRequest:
    return build_request("generations", {**BASE, **body})


def test_top_level_wins_field_by_field() -> None:
    req = _build(
        retry={"count": 1},
        name="top",
        orq={
            "retry": {"count": 4, "on_codes": [500]},
            "name": "orq",
            "timeout": {"call_timeout": 250},
            "fallback_on_codes": [502],
        },
        fallback_on_codes=[503],
    )
    opts = req.options
    assert opts.retry is not None and (opts.retry.count, opts.retry.on_codes) == (1, [429])
    assert opts.name == "top"
    assert opts.fallback_on_codes == [503]
    assert opts.timeout is not None and opts.timeout.call_timeout == 250  # only under orq


def test_orq_alone_is_used() -> None:
    req = _build(
        orq={
            "cache": {"type": "exact_match", "ttl": 3600.0},
            "fallbacks": [{"model": "placeholder/y"}],
        }
    )
    assert req.options.cache is not None and req.options.cache.ttl == 3600
    assert [f.model for f in req.options.fallbacks or []] == ["placeholder/y"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"orq": {"identity": {"id": "i"}, "contact": {"id": "c"}}}, "i"),
        ({"orq": {"contact": {"id": "c"}}}, "c"),
        ({"contact": {"id": "c-top"}, "orq": {"identity": {"id": "i"}}}, "i"),
        ({"identity": {"id": "i-top"}, "orq": {"identity": {"id": "i"}}}, "i-top"),
    ],
)
def test_identity_wins_over_contact(body: dict[str, Any], expected: str) -> None:
    identity = _build(**body).options.identity
    assert identity is not None and identity.id == expected


def test_identity_metadata_object_or_list() -> None:
    a = _build(orq={"identity": {"id": "u", "metadata": {"plan": "pro"}}}).options.identity
    b = _build(orq={"identity": {"id": "u", "metadata": [{"plan": "pro"}]}}).options.identity
    assert a is not None and b is not None and a.metadata == b.metadata == [{"plan": "pro"}]


def test_load_balancer_list_and_object_forms_agree() -> None:
    listed = _build(
        load_balancer=[
            {"type": "weight_based", "model": "placeholder/a", "weight": 0.4},
            {"model": "placeholder/b"},
        ]
    ).options.load_balancer
    obj = _build(
        orq={
            "load_balancer": {
                "type": "weight_based",
                "models": [
                    {"model": "placeholder/a", "weight": 0.4},
                    {"model": "placeholder/b", "weight": 0.5},
                ],
            }
        }
    ).options.load_balancer
    assert listed is not None and obj is not None
    assert listed.model_dump() == obj.model_dump()
    assert [(m.model, m.weight) for m in obj.models] == [
        ("placeholder/a", 0.4),
        ("placeholder/b", 0.5),
    ]


def test_null_means_absent_everywhere() -> None:
    req = _build(
        n=None,
        size=None,
        quality=None,
        retry=None,
        orq={"retry": {"count": None, "on_codes": None}, "cache": None, "name": None},
    )
    assert (req.n, req.size, req.quality) == (None, None, None)
    assert req.options.retry is not None and req.options.retry.count == 3  # defaults apply
    assert req.options.cache is None and req.options.name is None


def test_integral_floats_and_text_numbers() -> None:
    req = _build(
        n=2.0,
        retry={"count": "2.0", "on_codes": [429.0, "503"]},
        cache={"type": "exact_match", "ttl": "60"},
    )
    assert req.n == 2 and isinstance(req.n, int)
    assert req.options.retry is not None and req.options.retry.on_codes == [429, 503]
    assert req.options.cache is not None and req.options.cache.ttl == 60


def test_unknown_keys_are_ignored() -> None:
    req = _build(plugins=[{"id": "pii_redaction"}], orq={"unknown": 1, "thread": {"id": "t"}})
    assert req.options.thread is not None and req.options.thread.id == "t"


@pytest.mark.parametrize("body", [[], "text", 3])
def test_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        build_request("generations", body)
    assert info.value.param == "body"
