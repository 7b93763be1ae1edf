"""BFL wire rules against the fake FLUX API: a seed per parallel task, FLUX.2's size rule
(multiples of 16, sides 64–2048, at most 4 MP as BFL counts it), and ``fit_size`` itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakes.bfl import FakeBFL
from live import GEN, live_gateway, post

from imagegate.providers.queue.bfl import FLUX2, FLUX2_MAX_PIXELS, fit_size


@pytest.fixture
def fake() -> Iterator[FakeBFL]:
    with FakeBFL() as server:
        yield server


def test_parallel_tasks_get_their_own_seed(fake: FakeBFL, make_config: Any) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        fanned = post(gw, GEN, json={"model": "bfl/flux-pro-1.1", "prompt": "p", "n": 3, "seed": 3})
        single = post(gw, GEN, json={"model": "bfl/flux-2-pro", "prompt": "p", "seed": 3})
    assert fanned.status_code == 200 and single.status_code == 200, (fanned.text, single.text)
    assert fake.violations == []
    *three, last = fake.submits()
    assert sorted(s["seed"] for s in three) == [3, 4, 5]  # n=3, seed=3: three pictures
    assert last["seed"] == 3


@pytest.mark.parametrize(
    ("size", "sent"),
    [
        ("2048x2048", (2048, 2048)),  # BFL's own example of the 4 MP maximum
        ("4096x4096", (2048, 2048)),
        ("1920x1080", (1920, 1088)),
        ("4000x1000", (2048, 512)),  # the longer side is capped at 2048
        ("30x30", (64, 64)),
    ],
)
def test_flux2_sizes_follow_bfl_rules(
    fake: FakeBFL, make_config: Any, size: str, sent: tuple[int, int]
) -> None:
    with live_gateway(make_config(providers=fake.providers())) as gw:
        r = post(gw, GEN, json={"model": "bfl/flux-2-max", "prompt": "p", "size": size})
    assert r.status_code == 200, r.text
    assert fake.violations == []  # the fake checks steps, sides and the pixel cap
    (submit,) = fake.submits()
    assert (submit["width"], submit["height"]) == sent


@pytest.mark.parametrize(
    ("wh", "step", "side", "cap", "expected"),
    [
        ((1792, 1024), 32, (256, 1440), None, (1440, 832)),
        ((100, 100), 32, (256, 1440), None, (256, 256)),
        ((5000, 10), 16, (64, 2048), FLUX2_MAX_PIXELS, (2048, 64)),
        ((3000, 3000), 16, (64, 4096), 2048 * 2048, (2048, 2048)),
        # rounding would end over the cap: one step comes off the longer side
        ((1900, 2109), 16, (64, 4096), 2000 * 2000, (1904, 2096)),
    ],
)
def test_fit_size(
    wh: tuple[int, int],
    step: int,
    side: tuple[int, int],
    cap: int | None,
    expected: tuple[int, int],
) -> None:
    w, h = fit_size(wh, step, side, cap)
    assert (w, h) == expected
    assert w % step == 0 and h % step == 0
    assert side[0] <= min(w, h) and max(w, h) <= side[1]
    assert cap is None or w * h <= cap


def test_every_flux2_fit_is_within_bfl_rules() -> None:
    for w in range(1, 5000, 97):
        for h in range(1, 5000, 89):
            fw, fh = fit_size((w, h), FLUX2.step, FLUX2.side, FLUX2.max_pixels)
            assert fw % 16 == 0 and fh % 16 == 0, (w, h)
            assert 64 <= min(fw, fh) and max(fw, fh) <= 2048, (w, h)
            assert fw * fh <= FLUX2_MAX_PIXELS, (w, h)
