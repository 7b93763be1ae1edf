from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

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
