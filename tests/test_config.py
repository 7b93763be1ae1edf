"""One YAML file, every key overridable by env; a bad config names the key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from imagegate.cli import check_bind
from imagegate.cli.serve import fleet_warning
from imagegate.config import ConfigError, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "imagegate.yaml"
    path.write_text(text)
    return path


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "port: 9000\nhost: 127.0.0.1\nproviders:\n  openai:\n"
        "    api_key: sk-file\n    base_url: http://file/v1\n",
    )
    config = load_config(path, env={})
    assert config.port == 9000
    assert config.providers["openai"].api_key == "sk-file"
    env = {
        "IMAGEGATE_PORT": "9100",
        "IMAGEGATE_HOST": "0.0.0.0",
        "IMAGEGATE_API_KEYS": " sk-a , sk-b,, ",
        "OPENAI_API_KEY": "sk-env",
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
    }
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
        ('api_keys: ["sha256:abc"]\n', "api_keys"),
        ('api_keys: [""]\n', "api_keys"),
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


# --- env references ----------------------------------------------------------------------------
def test_env_references_expand_in_every_string_value(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        (
            "port: ${PORT}\n"
            "api_keys: ['${GW_KEY}', 'plain']\n"
            "public_url: https://${HOST:-img.example}/x\n"
            "providers:\n"
            "  mylab:\n"
            "    type: openai-compatible\n"
            "    base_url: http://${LAB_HOST}:8000/v1\n"
            "    api_key: ${MYLAB_KEY}\n"
            "    headers: {X-Literal: '$${NOT_A_REF}', X-Empty: '${EMPTY:-fallback}'}\n"
        ),
    )
    env = {
        "PORT": "9001",
        "GW_KEY": "sk-gw",
        "LAB_HOST": "10.0.0.5",
        "MYLAB_KEY": "k-lab",
        "EMPTY": "",
    }
    config = load_config(path, env=env)
    assert config.port == 9001
    assert config.api_keys == ["sk-gw", "plain"]
    assert config.public_url == "https://img.example/x"
    lab = config.providers["mylab"]
    assert (lab.api_key, lab.base_url) == ("k-lab", "http://10.0.0.5:8000/v1")
    assert lab.headers == {"X-Literal": "${NOT_A_REF}", "X-Empty": "fallback"}


def test_env_reference_values_are_not_expanded_again(tmp_path: Path) -> None:
    path = _write(tmp_path, "public_url: ${A}\n")
    assert load_config(path, env={"A": "${B}", "B": "no"}).public_url == "${B}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "providers:\n  mylab:\n    type: openai-compatible\n    api_key: ${MYLAB_KEY}\n",
            "providers.mylab.api_key: environment variable MYLAB_KEY is not set",
        ),
        ("api_keys: [ok, '${NOPE}']\n", "api_keys.1: environment variable NOPE is not set"),
        ("public_url: ${1BAD}\n", "public_url: bad env reference"),
        ("public_url: x${OPEN\n", "public_url: unclosed"),
    ],
)
def test_bad_env_reference_names_the_key_and_variable(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text), env={})
    assert str(info.value).startswith(message), info.value
    assert "\n" not in str(info.value)


# --- log_level ---------------------------------------------------------------------------------
def test_log_level_is_validated_and_normalised(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "log_level: WARNING\n"), env={}).log_level == "warning"
    assert load_config(env={"IMAGEGATE_LOG_LEVEL": "Debug"}).log_level == "debug"
    with pytest.raises(ConfigError, match=r"^log_level: must be one of critical"):
        load_config(_write(tmp_path, "log_level: loud\n"), env={})
    with pytest.raises(ConfigError, match=r"^log_level: .*\(from env IMAGEGATE_LOG_LEVEL\)$"):
        load_config(env={"IMAGEGATE_LOG_LEVEL": "loud"})


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from imagegate.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("IMAGEGATE_", "OPENAI_", "AZURE_", "GEMINI_")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("yaml_text", "env", "key"),
    [
        ("log_level: loud\n", {}, "log_level:"),
        ("", {"IMAGEGATE_LOG_LEVEL": "loud"}, "log_level:"),
        (
            "providers:\n  mylab: {type: openai-compatible, bse_url: http://x/v1}\n",
            {},
            "providers.mylab.bse_url: unknown key for type openai-compatible "
            "(did you mean base_url?)",
        ),
        ("providers:\n  mylab: {type: nosuch}\n", {}, "providers.mylab.type: unknown provider"),
        ("providers:\n  azure: {api_key: k}\n", {}, "providers.azure.base_url: required"),
    ],
)
def test_serve_refuses_bad_config_with_one_line_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    yaml_text: str,
    env: dict[str, str],
    key: str,
) -> None:
    """Refused before anything is served: main() returns before uvicorn would start."""
    _clean_env(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = _write(tmp_path, yaml_text or "port: 0\n")
    code, out, err = _cli(["serve", "--config", str(path)], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"imagegate: config error: {key}"), err


# --- strict provider entries -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"type": "openai-compatible", "bse_url": "http://x"},
            "providers.p.bse_url: unknown key for type openai-compatible (did you mean base_url?)",
        ),
        (
            {"type": "fal", "api_key": "k", "queue_ulr": "http://q"},
            "providers.p.queue_ulr: unknown key for type fal (did you mean queue_url?)",
        ),
        ({"type": "openai", "zzz": 1}, "providers.p.zzz: unknown key for type openai (accepted: "),
        ({"type": "nosuch"}, "providers.p.type: unknown provider type 'nosuch' (known: azure, "),
        ({"base_url": "http://x"}, "providers.p: no adapter is named 'p'; add type: (one of "),
        ({"type": "azure", "api_key": "k"}, "providers.p.base_url: required for type azure"),
        # a static token names no project (an entry with nothing may use ADC's)
        (
            {"type": "vertex", "access_token": "t"},
            "providers.p: type vertex needs one of project_id, project with an access_token",
        ),
    ],
)
def test_provider_entries_are_strict(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={}, overrides={"providers": {"p": entry}})
    assert str(info.value).startswith(message), info.value


def test_every_adapter_declares_its_keys() -> None:
    from imagegate.providers.registry import ADAPTERS, PROVIDER_KEYS

    assert set(PROVIDER_KEYS) == set(ADAPTERS)


def test_documented_adapter_options_are_accepted() -> None:
    providers = {
        "vertex": {"project_id": "p", "credentials_file": "/x.json", "parameters": {}},
        "bedrock": {
            "region": "eu-west-1",
            "access_key_id": "a",
            "secret_access_key": "s",
            "session_token": "t",
            "image_strength": 0.4,
        },
        "fal": {"api_key": "k", "mode": "sync", "queue_url": "http://q", "poll_interval_s": 1},
        "bfl": {"api_key": "k", "poll_interval_s": 1, "safety_tolerance": 2},
        "azure": {"base_url": "https://r.openai.azure.com", "access_token": "t"},
        "off": {"type": "azure", "enabled": False},  # a disabled entry needs nothing
    }
    config = load_config(env={}, overrides={"providers": providers})
    assert config.providers["fal"].option("queue_url") == "http://q"


def test_azure_endpoint_env_is_named_when_missing() -> None:
    with pytest.raises(ConfigError, match=r"base_url: required .*AZURE_OPENAI_ENDPOINT"):
        load_config(env={"AZURE_OPENAI_API_KEY": "k"})


def test_keyless_entries_are_unavailable_and_written_ones_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagegate.providers import registry as registry_module
    from imagegate.providers.registry import Registry

    monkeypatch.setattr(registry_module, "_WARNED", set())

    with pytest.raises(ConfigError, match="GEMINI_API_KEY is not set"):
        load_config(
            _write(tmp_path, "providers: {google: {api_key: '${GEMINI_API_KEY}'}}\n"), env={}
        )
    path = _write(
        tmp_path,
        "providers:\n  google: {api_key: '${GEMINI_API_KEY:-}',"
        " base_url: https://generativelanguage.googleapis.com}\n",
    )
    with caplog.at_level("WARNING", logger="imagegate.providers.registry"):
        registry = Registry(load_config(path, env={}))
        Registry(load_config(path, env={}))  # startup builds two: still one line
    assert "google" not in registry.names()  # /health lists registry.names()
    assert registry.unavailable["google"] == "no api_key configured"
    assert [r.getMessage() for r in caplog.records] == [
        "providers.google: no api_key configured: its models are not served"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="imagegate.providers.registry"):
        registry = Registry(load_config(path, env={"GEMINI_API_KEY": "g-key"}))
        quiet = Registry(load_config(env={}))  # env-less named providers: no entry, no warning
    assert "google" in registry.names() and "google" not in quiet.names()
    assert caplog.records == []


# --- relative paths ----------------------------------------------------------------------------
def test_relative_paths_follow_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    conf = tmp_path / "conf"
    conf.mkdir()
    path = conf / "imagegate.yaml"
    path.write_text("data_dir: state\nuploads: {tmp_dir: spool}\n")
    config = load_config(path, env={})
    assert config.data_dir == str(conf / "state")
    assert config.storage.path == str(conf / "state" / "blobs")
    assert config.uploads.tmp_dir == str(conf / "spool")
    path.write_text("storage: {path: ../pics}\n")  # data_dir default, storage.path given
    config = load_config(path, env={})
    assert config.data_dir == str(conf / ".imagegate")
    assert config.storage.path == str(conf / "../pics")
    # from env: relative to the working directory, as a shell user expects
    config = load_config(path, env={"IMAGEGATE_DATA_DIR": "d"})
    assert config.data_dir == "d"
    # without a file: the working directory, as before
    assert load_config(env={}).data_dir == ".imagegate"
    path.write_text("data_dir: /abs/dir\n")
    assert load_config(path, env={}).data_dir == "/abs/dir"


def test_traces_reads_the_database_next_to_the_config_and_filters_by_error_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from imagegate.store import open_store
    from imagegate.telemetry.trace import TraceRecord, new_trace_id

    _clean_env(monkeypatch)
    conf = tmp_path / "conf"
    conf.mkdir()
    path = conf / "imagegate.yaml"
    path.write_text("data_dir: state\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    async def record() -> None:
        store = open_store(load_config(path))
        try:
            await store.write_batch(
                [
                    TraceRecord(
                        new_trace_id(),
                        "generations",
                        "limited",
                        status=429,
                        error_code="rate_limit_exceeded",
                        requested_model="openai/dall-e-3",
                    ),
                    TraceRecord(
                        new_trace_id(),
                        "generations",
                        "served",
                        status=200,
                        requested_model="openai/dall-e-3",
                        served_model="placeholder/fox",
                    ),
                    TraceRecord(
                        new_trace_id(),
                        "generations",
                        "refused",
                        status=400,
                        error_code="content_policy_violation",
                        requested_model="xai/x",
                    ),
                ]
            )
        finally:
            await store.close()

    asyncio.run(record())
    code, out, err = _cli(
        ["traces", "--config", str(path), "--status", "rate_limit_exceeded"], capsys
    )
    assert code == 0, err
    assert err.strip() == f"imagegate: reading {conf / 'state' / 'imagegate.db'}"
    header, *rows = out.strip().splitlines()
    assert header.split()[4:8] == ["STATUS", "ERROR", "MODEL", "SERVED"]
    assert len(rows) == 1 and rows[0].split()[3:8] == [
        "limited",
        "429",
        "rate_limit_exceeded",
        "openai/dall-e-3",
        "-",
    ]
    code, out, _ = _cli(["traces", "--config", str(path), "--status", "200"], capsys)
    assert code == 0 and "placeholder/fox" in out and "limited" not in out
    code, _, err = _cli(["traces", "--config", str(path), "--status", "bogus"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert list(elsewhere.iterdir()) == []  # nothing created in the working directory


def test_the_keys_table_covers_every_option_an_adapter_reads() -> None:
    """Each ``option("x")`` read in an adapter's modules is a key its type accepts."""
    import re

    import imagegate.providers as pkg
    from imagegate.providers.registry import ADAPTERS, COMMON_KEYS, PROVIDER_KEYS

    folder = Path(pkg.__file__).parent
    helpers = {
        "azure": ["imagegate.providers.openai.openai"],
        "google": ["imagegate.providers.google.wire"],
        "vertex": ["imagegate.providers.google.tokens", "imagegate.providers.google.wire"],
        "bedrock": ["imagegate.providers.bedrock.sigv4"],
    }
    for type_name, target in ADAPTERS.items():
        assert isinstance(target, str)
        modules = [target.partition(":")[0], *helpers.get(type_name, [])]
        files = [folder / m.removeprefix("imagegate.providers.").replace(".", "/") for m in modules]
        read = {
            name
            for file in files
            for name in re.findall(r"option\(\s*\"(\w+)\"", file.with_suffix(".py").read_text())
        }
        accepted = COMMON_KEYS | PROVIDER_KEYS[type_name].optional
        assert read <= accepted, (type_name, read - accepted)


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({}, False),  # one process on SQLite and memory: its own key is fine
        ({"redis_url": "redis://127.0.0.1:6379/0"}, True),
        ({"database_url": "postgresql://127.0.0.1/test"}, True),
        ({"database_url": "postgresql://127.0.0.1/test", "signing_key": "k" * 32}, False),
    ],
)
def test_a_shared_deployment_without_a_signing_key_is_warned(
    overrides: dict[str, str], warned: bool
) -> None:
    warning = fleet_warning(load_config(env={}, overrides=overrides))
    assert (warning is not None) is warned
    if warning:
        assert "signing_key" in warning and "IMAGEGATE_SIGNING_KEY" in warning
