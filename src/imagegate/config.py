"""Settings: one YAML file, every key overridable by environment variables.

A bad config raises ``ConfigError`` whose message names the key; the CLI exits 2 with it.
Secrets come from the file or env only and are never logged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .aliases import Aliases, DefaultsConfig
from .cache.settings import CacheConfig
from .idempotency.settings import IdempotencyConfig
from .jobs.settings import JobsConfig, WebhooksConfig
from .lifecycle.settings import LifecycleConfig
from .telemetry.settings import TelemetryConfig

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
# where a value came from, per key path: "file", "env NAME" or "override" (absent: default)
Sources = dict[tuple[str, ...], str]


class ConfigError(Exception):
    """A configuration problem; the message names the offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderConfig(BaseModel):
    """One provider entry. ``type`` picks the adapter (defaults to the entry's name)."""

    model_config = ConfigDict(extra="allow")

    type: str | None = None
    api_key: str | None = None
    base_url: str | None = None
    region: str | None = None
    api_version: str | None = None
    deployments: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    pool_size: int = Field(0, ge=0)  # max connections per provider; 0 = unlimited
    enabled: bool = True

    def option(self, name: str, default: Any = None) -> Any:
        """An adapter-specific extra key (e.g. ``project_id``)."""
        extra = self.model_extra or {}
        return extra.get(name, default)


class RoutingConfig(_Section):
    backoff_base_s: float = Field(1.0, ge=0)
    max_retry_after_s: float = Field(30.0, ge=0)
    default_timeout_s: float = Field(600.0, gt=0)
    deadline_s: float = Field(900.0, gt=0)


class StorageConfig(_Section):
    backend: Literal["local", "s3"] = "local"
    path: str = ""  # empty: <data_dir>/blobs
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    prefix: str = ""
    url_ttl_s: int = Field(3600, ge=1)
    fetch_max_bytes: int = Field(64 * 1024 * 1024, ge=1)
    fetch_timeout_s: float = Field(60.0, gt=0)
    direct_io: bool = True  # local: archive copies (b64 answers) bypass the page cache
    pack_max_bytes: int = Field(64 * 1024, ge=0)  # local: blobs up to this in pack.db; 0: off


class UploadConfig(_Section):
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1)
    max_files: int = Field(16, ge=1)
    spool_bytes: int = Field(1024 * 1024, ge=0)
    tmp_dir: str | None = None


class LimitsConfig(_Section):
    """Hard bounds on what one request may ask for, checked before any work starts.

    Every bound here is documented in docs/configuration.md and docs/security.md.
    """

    # routing fan-out
    max_fallbacks: int = Field(10, ge=0)
    max_load_balancer_models: int = Field(10, ge=1)
    max_attempts: int = Field(32, ge=1)  # (1 + retry.count) x candidates, per request
    # text
    max_prompt_chars: int = Field(32_000, ge=1)
    max_expanded_prompt_chars: int = Field(64_000, ge=1)  # after a stored template is applied
    max_name_chars: int = Field(256, ge=1)  # orq.name, identity/thread/prompt ids, model names
    max_metadata_keys: int = Field(64, ge=0)
    max_metadata_bytes: int = Field(16 * 1024, ge=0)  # request metadata, keys + values, UTF-8
    max_tags: int = Field(32, ge=0)  # identity.tags, thread.tags
    max_tag_chars: int = Field(128, ge=1)
    max_identity_metadata_bytes: int = Field(16 * 1024, ge=0)  # identity.metadata as JSON
    # bodies
    max_json_bytes: int = Field(1024 * 1024, ge=1024)
    max_json_depth: int = Field(16, ge=4)
    max_multipart_bytes: int = Field(100 * 1024 * 1024, ge=1024)  # all parts of one request
    max_spooled_bytes: int = Field(1024 * 1024 * 1024, ge=0)  # all requests of one process
    body_timeout_s: float = Field(300.0, gt=0)  # whole request body
    body_idle_timeout_s: float = Field(30.0, gt=0)  # between two chunks of a body
    # images
    max_image_pixels: int = Field(40_000_000, ge=1)  # inputs, masks and provider answers
    image_workers: int = Field(2, ge=1)  # threads for Pillow work (decode, masks)
    max_provider_response_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_model_aliases: int = Field(1000, ge=0)  # entries of ``models:`` (config, not requests)


class FetchConfig(_Section):
    """Outbound fetches of URLs that did not come from config (provider image URLs...)."""

    allow_private: bool = False  # open loopback/private ranges (tests, private deployments)


class ConsoleConfig(_Section):
    """The web console at ``/console`` (docs/console.md)."""

    enabled: bool = True
    session_ttl_s: int = Field(8 * 3600, ge=60, le=30 * 86400)  # sign-in lasts this long


class Config(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    api_keys: list[str] = Field(default_factory=list)
    # HMAC pepper for stored (managed) API keys; default: derived from the signing key.
    key_pepper: str | None = None
    # The one Redis for every shared feature (rate limits, budgets, the cache with
    # cache.backend: redis); None: each process keeps its own counters.
    redis_url: str | None = None
    public_url: str | None = None
    signing_key: str | None = None
    data_dir: str = ".imagegate"
    database_url: str | None = None
    log_level: str = "info"  # critical | error | warning | info | debug, any case
    log_format: Literal["text", "json"] = "text"  # the access log and startup summary
    access_log: bool = True  # one line per request
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    uploads: UploadConfig = Field(default_factory=UploadConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    idempotency: IdempotencyConfig = Field(default_factory=IdempotencyConfig)
    jobs: JobsConfig = Field(default_factory=JobsConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    traces: bool = True
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)  # drain, readiness
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)  # OpenTelemetry
    # model names (aliases.py, docs/configuration.md): after ``limits``, which bound them
    models: Aliases = Field(default_factory=dict)
    default_provider: str | None = None  # bare names → <default_provider>/<name>
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)

    @property
    def shared_redis_url(self) -> str | None:
        """The Redis every shared feature uses: ``redis_url``, else the cache's when the cache
        is on Redis, else None (in-process counters)."""
        if self.redis_url:
            return self.redis_url
        return self.cache.redis_url if self.cache.backend == "redis" else None

    @model_validator(mode="after")
    def _paths_under_data_dir(self) -> Config:
        """Local image blobs live under ``data_dir`` unless ``storage.path`` says otherwise."""
        if not self.storage.path:
            self.storage.path = str(Path(self.data_dir) / "blobs")
        return self

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, level: str) -> str:
        """Checked here so a typo is a config error, not a traceback from logging/uvicorn."""
        normal = level.strip().lower()
        if normal not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, not {level[:40]!r}")
        return normal

    @field_validator("api_keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        """Each key in clear or as ``sha256:<64 hex>``; a bad digest fails at load, not later."""
        for key in keys:
            if not key.strip():
                raise ValueError("empty API key")
            if key.startswith("sha256:"):
                digest = key[7:]
                if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                    raise ValueError("a sha256: key needs 64 hex digits")
        return keys


def _env_overrides(raw: dict[str, Any], env: dict[str, str], sources: Sources) -> dict[str, Any]:
    def put(path: tuple[str, ...], value: Any, name: str) -> None:
        sources[path] = f"env {name}"
        node = raw
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{'.'.join(path[:-1])}: must be a mapping")
        node[path[-1]] = value

    simple = {
        "IMAGEGATE_HOST": ("host",),
        "IMAGEGATE_PORT": ("port",),
        "IMAGEGATE_WORKERS": ("workers",),
        "IMAGEGATE_PUBLIC_URL": ("public_url",),
        "IMAGEGATE_SIGNING_KEY": ("signing_key",),
        "IMAGEGATE_DATA_DIR": ("data_dir",),
        "IMAGEGATE_DATABASE_URL": ("database_url",),
        "IMAGEGATE_REDIS_URL": ("cache", "redis_url"),
        "IMAGEGATE_KEY_PEPPER": ("key_pepper",),
        "IMAGEGATE_CACHE_BACKEND": ("cache", "backend"),
        "IMAGEGATE_STORAGE_BACKEND": ("storage", "backend"),
        "IMAGEGATE_STORAGE_PATH": ("storage", "path"),
        "IMAGEGATE_LOG_LEVEL": ("log_level",),
        "IMAGEGATE_LOG_FORMAT": ("log_format",),
        "IMAGEGATE_ACCESS_LOG": ("access_log",),
        "IMAGEGATE_CONSOLE_ENABLED": ("console", "enabled"),
        "IMAGEGATE_OTLP_ENDPOINT": ("telemetry", "otlp_endpoint"),
        "OPENAI_API_KEY": ("providers", "openai", "api_key"),
        "OPENAI_BASE_URL": ("providers", "openai", "base_url"),
        "AZURE_OPENAI_API_KEY": ("providers", "azure", "api_key"),
        "AZURE_OPENAI_ENDPOINT": ("providers", "azure", "base_url"),
        "GEMINI_API_KEY": ("providers", "google", "api_key"),
        "STABILITY_API_KEY": ("providers", "stability", "api_key"),
        "FAL_KEY": ("providers", "fal", "api_key"),
        "TOGETHER_API_KEY": ("providers", "together", "api_key"),
        "XAI_API_KEY": ("providers", "xai", "api_key"),
        "REPLICATE_API_TOKEN": ("providers", "replicate", "api_key"),
        "BFL_API_KEY": ("providers", "bfl", "api_key"),
        "RECRAFT_API_TOKEN": ("providers", "recraft", "api_key"),
    }
    for name, path in simple.items():
        if env.get(name):
            put(path, env[name], name)
    if env.get("IMAGEGATE_REDIS_URL"):
        put(("redis_url",), env["IMAGEGATE_REDIS_URL"], "IMAGEGATE_REDIS_URL")
        if "IMAGEGATE_CACHE_BACKEND" not in env:
            put(("cache", "backend"), "redis", "IMAGEGATE_REDIS_URL")
    if env.get("IMAGEGATE_API_KEYS"):
        keys = [k.strip() for k in env["IMAGEGATE_API_KEYS"].split(",") if k.strip()]
        put(("api_keys",), keys, "IMAGEGATE_API_KEYS")
    return raw


# ``$${`` (a literal ``${``), ``${...}`` (a reference), or an unclosed ``${``
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def expand_env(value: Any, env: dict[str, str], path: tuple[str, ...] = ()) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string value (not keys), recursively.

    Why after YAML parsing: a secret's characters can never change the document's structure.
    ``$${`` stays a literal ``${``; an unset variable without a default is a ``ConfigError``
    naming the key, so a secret is never sent upstream as the text ``${MYLAB_KEY}``.
    """
    if isinstance(value, dict):
        return {k: expand_env(v, env, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, (*path, str(i))) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    key = ".".join(path) or "config"

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        body = match.group(1)
        if body is None:
            raise ConfigError(f"{key}: unclosed ${{ (write $${{ for a literal ${{)")
        ref = _NAME.fullmatch(body)
        if ref is None:
            raise ConfigError(f"{key}: bad env reference ${{{body[:60]}}}")
        name, default = ref.group(1), ref.group(2)
        found = env.get(name)
        if found:
            return found
        if default is not None:  # like the shell's :- , also used when the variable is empty
            return default
        if found is not None:
            return found
        raise ConfigError(
            f"{key}: environment variable {name} is not set "
            f"(write ${{{name}:-default}} for a fallback)"
        )

    return _REFERENCE.sub(substitute, value)


def _leaves(node: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of the leaf values of a mapping (a list is one leaf)."""
    if isinstance(node, dict) and node:
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*path, str(k)))]
    return [path] if path else []


def _read_file(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise ConfigError(f"config: file not found: {p}")
    try:
        loaded = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "parse error"
        raise ConfigError(f"config: not valid YAML{where}: {problem}") from None
    if not isinstance(loaded, dict):
        raise ConfigError("config: the top level must be a mapping")
    return loaded


def _resolve_paths(config: Config, base: Path, sources: Sources) -> None:
    """Relative paths written in the file (and the defaults) are relative to the file's folder,
    so ``imagegate traces --config /srv/ig/imagegate.yaml`` reads the same database from any
    working directory. Paths from env or overrides stay relative to the working directory."""

    def resolve(value: str, key: tuple[str, ...]) -> str:
        if sources.get(key, "file") != "file":
            return value
        path = Path(value).expanduser()
        return value if path.is_absolute() else str(base / path)

    config.data_dir = resolve(config.data_dir, ("data_dir",))
    if ("storage", "path") in sources:
        config.storage.path = resolve(config.storage.path, ("storage", "path"))
    else:  # the default follows data_dir
        config.storage.path = str(Path(config.data_dir) / "blobs")
    if config.uploads.tmp_dir:
        config.uploads.tmp_dir = resolve(config.uploads.tmp_dir, ("uploads", "tmp_dir"))


def explain_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Config, Sources, Path | None]:
    """``load_config``, plus where each value came from and the file that was read."""
    env = dict(os.environ) if env is None else env
    path = path or env.get("IMAGEGATE_CONFIG")
    raw: dict[str, Any] = {}
    sources: Sources = {}
    file: Path | None = None
    if path:
        file = Path(path).absolute()
        raw = expand_env(_read_file(file), env)
        sources.update((leaf, "file") for leaf in _leaves(raw))
    raw = _env_overrides(raw, env, sources)
    for key, value in (overrides or {}).items():
        if value is not None:
            raw[key] = value
            sources.update((leaf, "override") for leaf in _leaves({key: value}))
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        key = ".".join(loc) or "config"
        origin = sources.get(loc, "")
        where = f" (from {origin})" if origin.startswith("env ") else ""
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{key}: {message}{where}") from None
    from .routing.names import config_problem  # provider entries and model names

    if (problem := config_problem(config)) is not None:
        raise ConfigError(problem)
    if file is not None:
        _resolve_paths(config, file.parent, sources)
    return config, sources, file


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Read the YAML file (or ``IMAGEGATE_CONFIG``), expand ``${VAR}`` references in it, apply
    env, then explicit overrides; validate everything, provider entries included."""
    return explain_config(path, env=env, overrides=overrides)[0]
