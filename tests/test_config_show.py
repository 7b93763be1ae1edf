"""`imagegate config show`: the effective config as YAML, secrets masked, each leaf's source."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from imagegate.cli import main
from imagegate.configshow import mask_url

SECRETS = (
    "sk-file-secret",
    "sk-env-secret",
    "pepper-secret",
    "sign-secret",
    "pg-secret",
    "aws-secret",
    "bearer-secret",
    "gw-key-secret",
)


@pytest.fixture
def shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[str, dict[str, str]]:
    """The output of ``config show`` for a file + env mix, and each leaf's source comment."""
    for name in list(os.environ):
        if name.startswith(("IMAGEGATE_", "OPENAI_", "AZURE_", "GEMINI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IMAGEGATE_PORT", "9123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret")
    monkeypatch.setenv("LAB_KEY", "sk-file-secret")
    path = tmp_path / "imagegate.yaml"
    path.write_text(
        "api_keys: [gw-key-secret]\n"
        "key_pepper: pepper-secret\n"
        "signing_key: sign-secret\n"
        "database_url: postgresql://ig:pg-secret@db.internal:5432/ig\n"
        "log_level: DEBUG\n"
        "storage: {backend: s3, bucket: b, secret_access_key: aws-secret}\n"
        "providers:\n"
        "  mylab:\n"
        "    type: openai-compatible\n"
        "    base_url: http://10.0.0.5:8000/v1\n"
        "    api_key: ${LAB_KEY}\n"
        "    headers: {Authorization: Bearer bearer-secret, X-Team: imaging}\n"
    )
    assert main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    comments: dict[str, str] = {}
    stack: list[str] = []
    for line in out.splitlines()[1:]:
        depth = (len(line) - len(line.lstrip())) // 2
        key = line.strip().split(":", 1)[0]
        stack[depth:] = [key]
        if "  # " in line:
            comments[".".join(stack)] = line.rsplit("  # ", 1)[1]
    return out, comments


def test_every_leaf_says_where_it_came_from(shown: tuple[str, dict[str, str]]) -> None:
    out, comments = shown
    assert out.startswith("# config file: ")
    assert comments["port"] == "env IMAGEGATE_PORT"
    assert comments["host"] == "default"
    assert comments["log_level"] == "file"
    assert comments["providers.mylab.api_key"] == "file"
    assert comments["providers.mylab.pool_size"] == "default"
    assert comments["providers.openai.api_key"] == "env OPENAI_API_KEY"
    assert comments["routing.deadline_s"] == "default"
    assert comments["storage.bucket"] == "file"


def test_output_is_yaml_with_secrets_masked(shown: tuple[str, dict[str, str]]) -> None:
    out, _ = shown
    for secret in SECRETS:
        assert secret not in out
    doc = yaml.safe_load(out)
    assert doc["port"] == 9123 and doc["log_level"] == "debug"
    assert doc["api_keys"] == ["***"]
    assert doc["key_pepper"] == doc["signing_key"] == "***"
    assert doc["database_url"] == "postgresql://ig:***@db.internal:5432/ig"
    assert doc["storage"]["secret_access_key"] == "***"
    lab = doc["providers"]["mylab"]
    assert lab["api_key"] == "***" and lab["base_url"] == "http://10.0.0.5:8000/v1"
    assert lab["headers"] == {"Authorization": "***", "X-Team": "imaging"}
    assert doc["providers"]["openai"]["api_key"] == "***"
    assert doc["redis_url"] is None  # unset values stay visible as null


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("postgresql://u:p@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("https://example.com/a@b", "https://example.com/a@b"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_a_bad_config_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("public_url: ${SURELY_UNSET_VARIABLE_X}\n")
    assert main(["config", "show", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "imagegate: config error: public_url: environment variable SURELY_UNSET_VARIABLE_X is"
        " not set (write ${SURELY_UNSET_VARIABLE_X:-default} for a fallback)"
    )
