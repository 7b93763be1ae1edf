"""The console in a real headless Chromium (Playwright), against a real ``imagegate serve``.

Providers: the built-in placeholder, and ``a``/``b`` on a fault-injecting fake that speaks
OpenAI's images API (``a/m1`` fails twice with 503, then ``b/m2`` answers: a request retried
then fallen back). Each test signs in with a key of a workspace of its own.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from consolekit import CHROMIUM, Served, image_loaded, screenshot, serve, sign_in
from fakes.faulty import FaultyUpstream, fail
from playwright import sync_api as playwright

UNLABELLED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).length"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def gw(fake: FaultyUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("console"), fake.providers("a", "b")) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_playground_generation_lands_in_the_list_with_a_thumbnail(gw: Served, page: Any) -> None:
    key = gw.new_key("play")
    sign_in(page, gw.url, key)
    page.get_by_role("link", name="Playground", exact=True).click()
    page.get_by_label("Model", exact=True).fill("placeholder/sketch")
    page.get_by_label("Prompt", exact=True).fill("a red fox in the snow")
    page.get_by_label("Images (n)").fill("2")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r".*/console/playground\?trace=.*"))
    image_loaded(page, "img.result-image")
    assert page.locator("img.result-image").count() == 2
    assert page.locator("img.result-image").first.get_attribute("alt") == "a red fox in the snow"
    screenshot(page, "playground")
    trace_id = page.url.split("trace=")[1].split("&")[0]

    page.get_by_role("link", name="Traces", exact=True).click()
    row = page.locator(f'tr[data-trace="{trace_id}"]')
    row.wait_for()
    image_loaded(page, f'tr[data-trace="{trace_id}"] img.thumb')
    widths = row.locator("img.thumb").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 2 and all(0 < w <= 256 for w in widths)
    assert "placeholder/sketch" in row.inner_text()
    screenshot(page, "traces")


def test_retried_twice_then_fallback_shows_three_attempts(
    gw: Served, fake: FaultyUpstream, page: Any
) -> None:
    key = gw.new_key("routing")
    fake.script("a/m1", fail(503), fail(503))
    r = gw.call(
        key,
        {
            "model": "a/m1",
            "prompt": "a lighthouse at dusk",
            "response_format": "b64_json",
            "orq": {
                "retry": {"count": 1, "on_codes": [503]},
                "fallbacks": [{"model": "b/m2"}],
                "name": "lighthouse",
            },
        },
    )
    assert r.status_code == 200, r.text
    trace_id = r.headers["x-orq-trace-id"]
    sign_in(page, gw.url, key)
    page.goto(f"{gw.url}/console/traces/{trace_id}")
    attempts = page.locator("tr.attempt")
    assert attempts.count() == 3
    cells = [
        (
            a.locator("td").nth(1).inner_text(),
            a.locator(".attempt-status").inner_text(),
            a.locator(".attempt-next").inner_text(),
        )
        for a in attempts.all()
    ]
    assert cells == [("a/m1", "503", "retry"), ("a/m1", "503", "fallback"), ("b/m2", "200", "done")]
    assert page.locator("svg.timeline rect.bar-bad").count() == 2
    assert page.locator("svg.timeline rect.bar-ok").count() == 1
    assert "b/m2" in page.locator("dl.facts").inner_text()
    assert "v2/router/images/generations" in page.locator("#curl").inner_text()
    image_loaded(page, "img.full")
    screenshot(page, "trace")


def test_thread_of_three_shows_three_images_in_order(gw: Served, page: Any) -> None:
    key = gw.new_key("threads")
    prompts = ["a seed in the ground", "a sprout in the rain", "a tree in the sun"]
    for prompt in prompts:
        r = gw.call(
            key,
            {
                "model": "placeholder/sketch",
                "prompt": prompt,
                "orq": {"thread": {"id": "garden"}, "identity": {"id": "ada"}},
            },
        )
        assert r.status_code == 200, r.text
    sign_in(page, gw.url, key)
    page.get_by_role("link", name="Threads", exact=True).click()
    page.get_by_role("link", name="garden", exact=True).click()
    turns = page.locator("li.turn")
    assert turns.count() == 3
    image_loaded(page, "li.turn img.thumb")
    assert [t.locator("img").get_attribute("alt") for t in turns.all()] == prompts
    screenshot(page, "thread")
    page.goto(f"{gw.url}/console/identities/ada")
    image_loaded(page, ".grid img.thumb")
    assert page.locator(".grid img.thumb").count() == 3


def test_prompt_versions_diff(gw: Served, page: Any) -> None:
    key = gw.new_key("prompts")
    r = gw.api(
        key,
        "POST",
        "/v2/prompts",
        json={"id": "poster", "name": "Poster", "template": "a poster of {{input}}"},
    )
    assert r.status_code == 201, r.text
    sign_in(page, gw.url, key)
    page.goto(f"{gw.url}/console/prompts/poster")
    page.get_by_label("Template", exact=True).fill("a watercolor poster of {{input}}\nsoft light")
    page.get_by_role("button", name="Save as version 2").click()
    page.wait_for_url("**/console/prompts/poster")
    diff = page.locator("pre.diff")
    assert diff.locator(".del").all_text_contents() == ["removed: - a poster of {{input}}"]
    assert diff.locator(".ins").all_text_contents() == [
        "added: + a watercolor poster of {{input}}",
        "added: + soft light",
    ]
    screenshot(page, "prompt")


def test_usage_chart_has_the_days_numbers(gw: Served, page: Any) -> None:
    key = gw.new_key("usage")
    for i in range(3):
        assert (
            gw.call(key, {"model": "placeholder/sketch", "prompt": f"usage {i}"}).status_code == 200
        )
    assert (
        gw.call(key, {"model": "placeholder/sketch", "prompt": "x", "size": "1x1"}).status_code
        == 400
    )
    sign_in(page, gw.url, key)
    page.get_by_role("link", name="Usage", exact=True).click()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    bar = page.locator(f'figure.chart svg rect.bar[data-day="{today}"]').first
    assert bar.get_attribute("data-value") == "4"
    assert float(bar.get_attribute("height") or 0) > 0
    assert f"{today}: 4 requests" in (bar.locator("title").text_content() or "")
    row = page.locator(f'table.usage-days tr[data-day="{today}"]')
    assert row.locator(".requests").inner_text() == "4"
    assert row.locator(".images").inner_text() == "3"
    assert page.locator("figure.chart polyline").count() >= 2
    screenshot(page, "usage")


def test_second_workspace_sees_none_of_it(gw: Served, page: Any) -> None:
    key_a, key_b = gw.new_key("alpha"), gw.new_key("beta")
    r = gw.call(
        key_a,
        {
            "model": "placeholder/sketch",
            "prompt": "alpha secret",
            "orq": {"thread": {"id": "t-alpha"}, "identity": {"id": "id-alpha"}},
        },
    )
    assert r.status_code == 200
    trace_id = r.headers["x-orq-trace-id"]
    sign_in(page, gw.url, key_b)
    assert "alpha secret" not in page.content()
    assert page.locator("tr.trace-row").count() == 0
    for path in (
        f"/console/traces/{trace_id}",
        f"/console/traces/{trace_id}/images/0/thumb",
        f"/console/traces/{trace_id}/images/0",
        "/console/threads/t-alpha",
        "/console/identities/id-alpha",
    ):
        response = page.goto(gw.url + path)
        assert response is not None and response.status == 404, path
    page.goto(f"{gw.url}/console/traces?q=alpha")
    assert page.locator("tr.trace-row").count() == 0


def test_phone_width_dark_mode_and_labels(gw: Served, browser: Any) -> None:
    key = gw.new_key("phone")
    assert (
        gw.call(key, {"model": "placeholder/sketch", "prompt": "a phone-sized fox"}).status_code
        == 200
    )
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    try:
        pg = context.new_page()
        sign_in(pg, gw.url, key)
        image_loaded(pg, "img.thumb")
        overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
        background = pg.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(20, 21, 24)"
        unlabelled = pg.evaluate(UNLABELLED)
        assert unlabelled == 0
        assert pg.evaluate("[...document.images].every(i => i.alt)")
        screenshot(pg, "phone-dark")
    finally:
        context.close()
