"""One YAML file, every key overridable by env; a bad config names the key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from imagegate.cli import check_bind
from imagegate.config import ConfigError, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "imagegate.yaml"
    path.write_text(text)
    return path


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "port: 9000\nhost: 127.0.0.1\nproviders:\n  openai:\n"
                            "    api_key: sk-file\n    base_url: http://file/v1\n")  # fmt: skip
    config = load_config(path, env={})
    assert config.port == 9000
    assert config.providers["openai"].api_key == "sk-file"
    env = {
        "IMAGEGATE_PORT": "9100", "IMAGEGATE_HOST": "0.0.0.0",
        "IMAGEGATE_API_KEYS": " sk-a , sk-b,, ", "OPENAI_API_KEY": "sk-env",
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
    }  # fmt: skip
    config = load_config(path, env=env)
    assert (config.port, config.host) == (9100, "0.0.0.0")
    assert config.api_keys == ["sk-a", "sk-b"]
    assert config.providers["openai"].api_key == "sk-env"
    assert config.providers["openai"].base_url == "http://127.0.0.1:1/v1"
    assert load_config(path, env=env, overrides={"port": 9200}).port == 9200


def test_imagegate_config_env_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "port: 9300\n")
    assert load_config(env={"IMAGEGATE_CONFIG": str(path)}).port == 9300


def test_openai_env_alone_configures_the_provider() -> None:
    config = load_config(env={"OPENAI_API_KEY": "sk-only-env"})
    assert config.providers["openai"].api_key == "sk-only-env"


def test_defaults() -> None:
    config = load_config(env={})
    assert (config.host, config.port, config.api_keys) == ("127.0.0.1", 8080, [])
    assert config.uploads.max_file_bytes == 50 * 1024 * 1024
    assert config.uploads.max_files == 16


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("port: abc\n", "port"),
        ("port: 70000\n", "port"),
        ("routing: {deadline_s: -1}\n", "routing.deadline_s"),
        ("routing: {backof_base_s: 1}\n", "routing.backof_base_s"),
        ("uploads: {max_file_bytes: 0}\n", "uploads.max_file_bytes"),
        ("cache: {backend: memcached}\n", "cache.backend"),
        ("api_keys: [\"sha256:abc\"]\n", "api_keys"),
        ("api_keys: [\"\"]\n", "api_keys"),
        ("providers: {openai: {pool_size: many}}\n", "providers.openai.pool_size"),
        ("- just\n- a list\n", "config"),
        ("port: [unclosed\n", "config"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text), env={})
    message = str(info.value)
    assert message.startswith(f"{key}:"), message
    assert "\n" not in message


def test_bad_env_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"IMAGEGATE_PORT": "eighty"})
    assert str(info.value).startswith("port:")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", env={})


def test_sha256_keys_accepted() -> None:
    digest = hashlib.sha256(b"k").hexdigest()
    assert load_config(env={"IMAGEGATE_API_KEYS": f"sha256:{digest}"}).api_keys == [
        f"sha256:{digest}"
    ]


@pytest.mark.parametrize(
    ("host", "keys", "refused"),
    [
        ("127.0.0.1", [], False),
        ("localhost", [], False),
        ("::1", [], False),
        ("0.0.0.0", [], True),
        ("192.168.1.10", [], True),
        ("0.0.0.0", ["sk-a"], False),
    ],
)
def test_bind_policy(host: str, keys: list[str], refused: bool) -> None:
    problem = check_bind(load_config(env={}, overrides={"host": host, "api_keys": keys}))
    assert (problem is not None) == refused
    if refused:
        assert problem is not None and problem.startswith("host:")


def test_provider_keys_from_env_and_blobs_under_data_dir() -> None:
    from imagegate.config import load_config
    from imagegate.providers.registry import Registry

    env = {"FAL_KEY": "fal-k", "BFL_API_KEY": "bfl-k", "IMAGEGATE_DATA_DIR": "/tmp/ig-data"}
    config = load_config(env=env)
    assert config.providers["fal"].api_key == "fal-k"
    assert config.providers["bfl"].api_key == "bfl-k"
    assert config.storage.path == "/tmp/ig-data/blobs"
    registry = Registry(config)
    assert {"fal", "bfl", "placeholder"} <= set(registry.names())
    assert "stability" not in registry.names()  # no key given: not configured
