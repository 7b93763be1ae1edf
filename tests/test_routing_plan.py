"""The candidate chain: order, de-duplication, skips, load balancing.

The rules: docs/routing.md, sections `fallbacks`, `load_balancer` and "Models that cannot do
the request are skipped".
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from imagegate.errors import UnsupportedEngine
from imagegate.options import build_request
from imagegate.providers.registry import Registry
from imagegate.request import ImageRequest, UploadedFile
from imagegate.routing.plan import build_plan, weighted_order

DRAWS = 2000


@pytest.fixture
def registry(make_config: Any) -> Registry:
    """Providers a, b, c (OpenAI-compatible; never called here) plus ``off``, disabled."""
    providers: dict[str, Any] = {
        n: {"type": "openai-compatible", "base_url": f"http://127.0.0.1:9/{n}/v1"}
        for n in ("a", "b", "c")
    }
    providers["off"] = {"type": "openai-compatible", "base_url": "http://x", "enabled": False}
    return Registry(make_config(providers=providers))


def gen(**body: Any) -> ImageRequest:
    return build_request("generations", {"prompt": "a fox", **body})


def models(request: ImageRequest, registry: Registry, seed: int = 0) -> list[str]:
    return [c.model for c in build_plan(request, registry, random.Random(seed)).candidates]


def test_model_then_fallbacks_in_order(registry: Registry) -> None:
    plan = build_plan(
        gen(model="a/m1", orq={"fallbacks": [{"model": "c/m3"}, {"model": "b/m2"}]}),
        registry,
        random.Random(0),
    )
    assert [c.model for c in plan.candidates] == ["a/m1", "c/m3", "b/m2"]
    assert [c.source for c in plan.candidates] == ["model", "fallback", "fallback"]
    assert (plan.candidates[0].provider_name, plan.candidates[0].model_id) == ("a", "m1")
    assert plan.skipped == []


def test_a_model_appears_at_most_once(registry: Registry) -> None:
    fallbacks = [{"model": "b/m2"}, {"model": "a/m1"}, {"model": "b/m2"}]
    assert models(gen(model="a/m1", fallbacks=fallbacks), registry) == ["a/m1", "b/m2"]
    lb = {"type": "weight_based", "models": [{"model": "a/m1"}, {"model": "a/m1"}]}
    chain = models(gen(model="x", load_balancer=lb, fallbacks=[{"model": "a/m1"}]), registry)
    assert chain == ["a/m1"]


def test_unconfigured_providers_are_skipped_and_recorded(registry: Registry) -> None:
    request = gen(
        model="nowhere/m", fallbacks=[{"model": "off/m"}, {"model": "bare"}, {"model": "b/m2"}]
    )
    plan = build_plan(request, registry, random.Random(0))
    assert [c.model for c in plan.candidates] == ["b/m2"]
    reasons = {s.model: s.reason for s in plan.skipped}
    assert set(reasons) == {"nowhere/m", "off/m", "bare"}
    assert "not configured" in reasons["nowhere/m"]
    assert "disabled" in reasons["off/m"]
    assert "provider/model" in reasons["bare"]


def test_capabilities_skip_what_cannot_work(registry: Registry) -> None:
    # dall-e-3 (declared by the OpenAI adapter): generations only, three sizes, n <= 1.
    fb = [{"model": "b/m2"}]
    for body, param in (
        ({"size": "256x256"}, "size"),
        ({"n": 2}, "n"),
    ):
        plan = build_plan(gen(model="a/dall-e-3", fallbacks=fb, **body), registry, random.Random())
        assert [c.model for c in plan.candidates] == ["b/m2"]
        assert [(s.model, s.param) for s in plan.skipped] == [("a/dall-e-3", param)]
    ok = build_plan(gen(model="a/dall-e-3", size="1024x1792"), registry, random.Random())
    assert [c.model for c in ok.candidates] == ["a/dall-e-3"]


def test_operation_not_supported_is_skipped(registry: Registry) -> None:
    image = UploadedFile("image", "a.png", "png", 4, "0" * 64, data=b"\x89PNG")
    request = build_request(
        "variations", {"model": "a/dall-e-3", "fallbacks": [{"model": "a/dall-e-2"}]}, [image]
    )
    plan = build_plan(request, registry, random.Random())
    assert [c.model for c in plan.candidates] == ["a/dall-e-2"]
    assert plan.skipped[0].reason == "does not support images.variations"


def test_nothing_left_is_unsupported_engine_naming_every_reason(registry: Registry) -> None:
    with pytest.raises(UnsupportedEngine) as info:
        build_plan(
            gen(model="nowhere/m", fallbacks=[{"model": "a/dall-e-3"}], n=3),
            registry,
            random.Random(),
        )
    err = info.value
    assert (err.status, err.code, err.param) == (400, "unsupported_engine", "model")
    assert "nowhere/m: provider 'nowhere'" in err.message
    assert "a/dall-e-3: returns at most 1 image(s)" in err.message


def test_nothing_left_names_the_field_at_fault(registry: Registry) -> None:
    with pytest.raises(UnsupportedEngine) as info:
        build_plan(gen(model="a/dall-e-3", size="300x300"), registry, random.Random())
    assert info.value.param == "size"
    assert "does not support size 300x300" in info.value.message


def lb_object(*entries: tuple[str, float | None]) -> dict[str, Any]:
    items = [{"model": m} if w is None else {"model": m, "weight": w} for m, w in entries]
    return {"type": "weight_based", "models": items}


def lb_list(*entries: tuple[str, float | None]) -> list[dict[str, Any]]:
    return [{"type": "weight_based", **item} for item in lb_object(*entries)["models"]]


def first_choices(request: ImageRequest, registry: Registry, rng: random.Random) -> Counter[str]:
    return Counter(build_plan(request, registry, rng).candidates[0].model for _ in range(DRAWS))


def test_weighted_split_within_three_points(registry: Registry) -> None:
    request = gen(model="ignored/x", load_balancer=lb_object(("a/m1", 0.7), ("b/m2", 0.3)))
    counts = first_choices(request, registry, random.Random(2024))
    assert abs(counts["a/m1"] / DRAWS - 0.7) <= 0.03, counts
    assert abs(counts["b/m2"] / DRAWS - 0.3) <= 0.03, counts


def test_default_weight_is_half(registry: Registry) -> None:
    # a/m1 without weight (0.5) against b/m2 at 1.0: a/m1 should lead one time in three.
    request = gen(model="x", load_balancer=lb_object(("a/m1", None), ("b/m2", 1.0)))
    assert request.options.load_balancer is not None
    assert request.options.load_balancer.models[0].weight == 0.5
    counts = first_choices(request, registry, random.Random(7))
    assert abs(counts["a/m1"] / DRAWS - 1 / 3) <= 0.03, counts


def test_list_and_object_forms_plan_the_same(registry: Registry) -> None:
    entries = (("a/m1", 0.2), ("b/m2", None), ("c/m3", 0.9))
    as_object = gen(model="x", orq={"load_balancer": lb_object(*entries)})
    as_list = gen(model="x", orq={"load_balancer": lb_list(*entries)})
    rng_o, rng_l = random.Random(5), random.Random(5)
    for _ in range(200):
        assert models(as_object, registry, rng_o.randrange(10**9)) == models(
            as_list, registry, rng_l.randrange(10**9)
        )


def test_load_balancer_ignores_the_request_model(registry: Registry) -> None:
    request = gen(model="nowhere/x", load_balancer=lb_object(("a/m1", 1.0)))
    plan = build_plan(request, registry, random.Random())
    assert [c.model for c in plan.candidates] == ["a/m1"]
    assert [c.source for c in plan.candidates] == ["load_balancer"]
    assert plan.skipped == []  # the ignored model is not even looked at


def test_redraw_among_the_rest_then_fallbacks(registry: Registry) -> None:
    # After a/m1 (0.6) fails, b/m2 (0.3) should follow three times in four (0.3 / 0.4).
    request = gen(
        model="x",
        load_balancer=lb_object(("a/m1", 0.6), ("b/m2", 0.3), ("c/m3", 0.1)),
        fallbacks=[{"model": "c/m3"}, {"model": "a/dall-e-2"}],
    )
    rng = random.Random(11)
    seconds: Counter[str] = Counter()
    for _ in range(DRAWS):
        chain = [c.model for c in build_plan(request, registry, rng).candidates]
        assert sorted(chain[:3]) == ["a/m1", "b/m2", "c/m3"]
        assert chain[3:] == ["a/dall-e-2"]  # c/m3 already balanced: not tried twice
        if chain[0] == "a/m1":
            seconds[chain[1]] += 1
    share = seconds["b/m2"] / sum(seconds.values())
    assert abs(share - 0.75) <= 0.04, seconds


def test_unusable_balanced_models_are_skipped_not_drawn(registry: Registry) -> None:
    request = gen(model="x", load_balancer=lb_object(("nowhere/m", 1.0), ("a/m1", 0.001)))
    for seed in range(50):
        plan = build_plan(request, registry, random.Random(seed))
        assert [c.model for c in plan.candidates] == ["a/m1"]
        assert [s.model for s in plan.skipped] == ["nowhere/m"]


class _Edge(random.Random):
    """A random source stuck at its upper edge (float rounding at the end of the range)."""

    def random(self) -> float:
        return 0.9999999999999999


def test_weighted_order_is_a_permutation_even_at_the_edge() -> None:
    weighted = [("a", 0.1), ("b", 0.2), ("c", 0.7)]
    assert weighted_order(weighted, _Edge()) == ["c", "b", "a"]
    rng = random.Random(3)
    for _ in range(100):
        assert sorted(weighted_order(weighted, rng)) == ["a", "b", "c"]


def test_capabilities_name_the_field_at_fault() -> None:
    from imagegate.providers.base import Capabilities

    image = UploadedFile("image", "a.png", "png", 4, "0" * 64, data=b"\x89PNG")
    edit = build_request("edits", {"model": "p/m", "prompt": "x", "n": 3}, [image], image)
    no_mask = Capabilities(operations=frozenset({"edits"}), max_n=4, mask=False)
    assert no_mask.refusal(edit) == ("mask", "does not accept a mask")
    assert no_mask.refuse(edit) == "does not accept a mask"
    with_mask = Capabilities(operations=frozenset({"edits"}), max_n=2, mask=True)
    assert with_mask.refusal(edit) == ("n", "returns at most 2 image(s) per request (n=3)")
    assert Capabilities(operations=frozenset({"edits"}), mask=True).refusal(edit) is None
