"""What a configuration amounts to, in a few lines an operator can read at a glance.

``imagegate serve`` prints it before it starts serving (and ``imagegate config show`` can print
the same): where it listens, which store, cache, blob store and Redis it uses, every provider,
the limits that differ from the defaults and whether API keys are set. It never contains a
secret: URLs are reduced to host, port and database/bucket, keys to a count or "set"::

    for line in summary(config, registry):
        print(line)
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .config import Config, LimitsConfig, ProviderConfig
from .providers.registry import ALWAYS_ON, Registry

# Provider-entry keys that hold a credential: any of them set counts as "credentials set".
CREDENTIAL_KEYS = ("api_key", "access_token", "access_key_id", "credentials", "credentials_file")
LABEL_WIDTH = 10


def _host_port(url: str, default_port: int | None = None) -> str:
    """``host[:port]`` of ``url``, never its user, password, path or query."""
    try:
        parts = urlsplit(url)
        port = parts.port or default_port
    except ValueError:
        return "(unparsable URL)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host or "(no host)"


def _store(config: Config) -> str:
    url = config.database_url
    if not url:
        return f"sqlite {Path(config.data_dir) / 'imagegate.db'}"
    if url.startswith("sqlite:///"):
        return f"sqlite {url.removeprefix('sqlite:///')}"
    where = _host_port(url, 5432)
    try:
        parts = urlsplit(url)
        database = parts.path.lstrip("/")
        search_path = parse_qs(parts.query).get("search_path", [""])[-1]
    except ValueError:
        return f"postgresql {where}"
    out = f"postgresql {where}/{database}" if database else f"postgresql {where}"
    return f"{out} (schema {search_path})" if search_path else out


def _cache(config: Config) -> str:
    if config.cache.backend == "redis":
        return f"redis {_host_port(config.cache.redis_url, 6379)}"
    return f"memory (up to {config.cache.max_bytes // (1024 * 1024)} MB per process)"


def _blobs(config: Config) -> str:
    storage = config.storage
    if storage.backend == "s3":
        endpoint = _host_port(storage.endpoint_url) if storage.endpoint_url else "AWS"
        return f"s3 bucket {storage.bucket or '(none)'} at {endpoint}"
    return f"local {storage.path}"


def _redis(config: Config) -> str:
    url = config.shared_redis_url
    if url is None:
        return "none (rate limits and budgets counted per process)"
    return f"{_host_port(url, 6379)} (rate limits, budgets)"


def _credentials(entry: ProviderConfig) -> str:
    extra = entry.model_extra or {}
    present = bool(entry.api_key) or any(extra.get(k) for k in CREDENTIAL_KEYS)
    return "credentials set" if present else "no credentials in config"


def _providers(config: Config, registry: Registry) -> list[str]:
    entries = dict(config.providers)
    for name in ALWAYS_ON:
        entries.setdefault(name, ProviderConfig())
    lines = []
    for name in sorted(entries):
        entry = entries[name]
        provider = registry.get(name)
        origin_urls = getattr(provider, "origin_urls", None)
        urls: tuple[str, ...] = origin_urls() if callable(origin_urls) else ()
        if not urls and entry.base_url:
            urls = (entry.base_url,)
        hosts = ", ".join(dict.fromkeys(_host_port(u) for u in urls))
        if not hosts:
            hosts = "(built in)" if name in ALWAYS_ON else "(vendor default host)"
        if name in registry.unavailable:
            state = f"off: {registry.unavailable[name]}"
        elif name in ALWAYS_ON and entry.type in (None, name):
            state = "no credentials needed"
        else:
            state = _credentials(entry)
        lines.append(f"{name} {hosts}, {state}")
    return lines


def _limits(config: Config) -> str:
    defaults = LimitsConfig().model_dump()
    changed = [
        f"{key}={value}"
        for key, value in config.limits.model_dump().items()
        if value != defaults[key]
    ]
    return ", ".join(changed) if changed else "defaults"


def _api_keys(config: Config) -> str:
    count = len(config.api_keys)
    if count:
        return f"{count} in config (plus managed keys in the store)"
    return "none in config (managed keys in the store still apply)"


def items(config: Config, registry: Registry) -> list[tuple[str, str]]:
    """(label, value) pairs; ``provider`` repeats once per provider entry."""
    workers = f"{config.workers} worker{'s' if config.workers > 1 else ''}"
    host = f"[{config.host}]" if ":" in config.host else config.host or "*"
    out = [
        ("listen", f"http://{host}:{config.port} ({workers})"),
        ("store", _store(config)),
        ("cache", _cache(config)),
        ("blobs", _blobs(config)),
        ("redis", _redis(config)),
    ]
    out.extend(("provider", line) for line in _providers(config, registry))
    out.append(("limits", _limits(config)))
    out.append(("api keys", _api_keys(config)))
    return out


def summary(config: Config, registry: Registry) -> list[str]:
    """The summary as aligned text lines (no trailing newlines)."""
    return [f"{label:<{LABEL_WIDTH}} {value}" for label, value in items(config, registry)]


def summary_json(config: Config, registry: Registry) -> str:
    """The summary as one JSON object on one line (for ``log_format: json``)."""
    record: dict[str, object] = {"event": "startup"}
    providers: list[str] = []
    for label, value in items(config, registry):
        if label == "provider":
            providers.append(value)
        else:
            record[label.replace(" ", "_")] = value
    record["providers"] = providers
    return json.dumps(record, separators=(",", ":"))
