"""Fixtures shared by the test modules, and the rule that no test skips silently.

Helpers (``fakes/``, ``live.py``, ...) are importable as top-level modules because
``pyproject.toml`` puts ``tests/`` on pytest's ``pythonpath``.

A skipped test fails unless it is marked ``@pytest.mark.optional(reason=...)``: ``make test``
starts Redis and PostgreSQL, so a missing service or tool is a broken setup to report, not a
reason to pass quietly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import fresh_schema
from fakes.openai import GATEWAY_KEY, FakeOpenAI
from live import LiveGateway, live_gateway

from imagegate.config import Config, load_config

# vertex/ without a key falls back to google-auth's Application Default Credentials: in tests
# they find only what a test puts there (no GCE metadata-server probe, no developer's gcloud
# login). NO_GCE_CHECK is read when google-auth's metadata module is first imported.
os.environ["NO_GCE_CHECK"] = "true"
os.environ["CLOUDSDK_CONFIG"] = str(Path(__file__).parent / "no-gcloud-config")
os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    marker = item.get_closest_marker("optional")
    if marker is not None and marker.kwargs.get("reason"):
        return
    longrepr = report.longrepr
    why = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid} skipped ({why}); a test may only skip when marked"
        " @pytest.mark.optional(reason=...)"
    )


@pytest.fixture
def make_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Config with embedded defaults rooted in a temp dir; keyword overrides win."""

    def make(**overrides: object) -> Config:
        base: dict[str, object] = {
            "data_dir": str(tmp_path / "data"),
            "storage": {"path": str(tmp_path / "blobs")},
            "routing": {"backoff_base_s": 0.01, "max_retry_after_s": 1.0},
        }
        base.update(overrides)
        return load_config(env={}, overrides=base)

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The control-plane database, once per backend (see ``databases.py``)."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_schema() as url:
        yield url


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeOpenAI, LiveGateway]]:
    """One fake OpenAI and one gateway (with api_keys [GATEWAY_KEY]) per test module."""
    tmp = tmp_path_factory.mktemp("sdk")
    with FakeOpenAI() as fake:
        config = load_config(
            env={},
            overrides={
                "data_dir": str(tmp),
                "storage": {"path": str(tmp / "blobs")},
                "api_keys": [GATEWAY_KEY],
                "providers": fake.providers(),
            },
        )
        with live_gateway(config) as gw:
            yield fake, gw


@pytest.fixture
def fake(servers: tuple[FakeOpenAI, LiveGateway]) -> Iterator[FakeOpenAI]:
    """The module's fake OpenAI, reset; no wire-format violation may be left at the end."""
    servers[0].reset()
    yield servers[0]
    assert servers[0].violations == []


@pytest.fixture
def gw(servers: tuple[FakeOpenAI, LiveGateway], fake: FakeOpenAI) -> LiveGateway:
    return servers[1]
