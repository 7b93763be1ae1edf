from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakes.openai import GATEWAY_KEY, FakeOpenAI
from live import LiveGateway, live_gateway

from imagegate.config import Config, load_config


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


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeOpenAI, LiveGateway]]:
    """One fake OpenAI and one gateway (with api_keys [GATEWAY_KEY]) per test module."""
    tmp = tmp_path_factory.mktemp("sdk")
    with FakeOpenAI() as fake:
        config = load_config(env={}, overrides={
            "data_dir": str(tmp), "storage": {"path": str(tmp / "blobs")},
            "api_keys": [GATEWAY_KEY], "providers": fake.providers(),
        })  # fmt: skip
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
