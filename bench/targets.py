"""What the load is sent to: the upstream itself (the floor), imagegate, and optionally LiteLLM.

imagegate runs with every feature on — API keys, orq option validation, routing with retries
and a fallback, the SQLite trace store, memory cache, local blob store — as one
``imagegate serve`` process pinned to its own core. The config is built from the keys
``imagegate.config`` knows *at run time*, so features that land later are switched on
automatically and keys that do not exist yet are left out (and listed in the results).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from . import procs

BENCH_KEY = "sk-imagegate-bench-key"
UPSTREAM_KEY = "sk-fake-upstream-key"
LITELLM_KEY = "sk-litellm-bench-master"


@dataclass
class Endpoint:
    """A running target: where to send requests and which process tree to account."""

    name: str
    base: str  # URL prefix; requests go to f"{base}/images/{operation}"
    auth: str | None
    proc: procs.Proc | None
    info: dict[str, Any] = field(default_factory=dict)

    def url(self, operation: str) -> str:
        return f"{self.base}/images/{operation}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def fit_to_model(
    raw: dict[str, Any], model: type[BaseModel], path: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """Keep the keys ``model`` knows (recursing into strict sections); list the rest."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in raw.items():
        info = model.model_fields.get(key)
        if info is None:
            dropped.append(f"{path}{key}")
            continue
        annotation = info.annotation
        if (
            isinstance(value, dict)
            and isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and annotation.model_config.get("extra") == "forbid"
        ):
            kept[key], sub = fit_to_model(value, annotation, f"{path}{key}.")
            dropped.extend(sub)
        else:
            kept[key] = value
    return kept, dropped


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> None:
    """``a.b=value`` (value parsed as YAML) sets ``config["a"]["b"]``: for ablation runs."""
    for item in overrides:
        dotted, sep, text = item.partition("=")
        if not sep or not dotted:
            raise ValueError(f"--set wants KEY=VALUE, got {item!r}")
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = yaml.safe_load(text)


def imagegate_config(
    workdir: Path, port: int, upstream_base: str, workers: int, overrides: list[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The all-features-on config, fitted to the installed ``Config``."""
    from imagegate.config import Config

    data = workdir / "data"
    wanted: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "workers": workers,
        "api_keys": [BENCH_KEY],
        "public_url": f"http://127.0.0.1:{port}",
        "signing_key": "bench-signing-key-not-secret-0123456789",
        "data_dir": str(data),
        "traces": True,
        "log_level": "warning",
        "providers": {
            "openai": {"base_url": upstream_base, "api_key": UPSTREAM_KEY},
        },
        "routing": {"backoff_base_s": 0.05, "max_retry_after_s": 1.0},
        "cache": {"backend": "memory"},
        "storage": {"backend": "local", "path": str(workdir / "blobs")},
        "uploads": {"tmp_dir": str(workdir / "uploads")},
    }
    apply_overrides(wanted, overrides or [])
    fitted, dropped = fit_to_model(wanted, Config)
    Config.model_validate(fitted)  # fail here, with the key named, rather than in the child
    return fitted, dropped


def clean_env() -> dict[str, str]:
    """Our environment minus settings that would override the bench config."""
    prefixes = ("IMAGEGATE_", "OPENAI_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def start_imagegate(
    workdir: Path,
    upstream_base: str,
    *,
    cpus: str | None,
    workers: int = 1,
    overrides: list[str] | None = None,
    env: dict[str, str] | None = None,
    workspace_limits: dict[str, Any] | None = None,
) -> Endpoint:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "uploads").mkdir(exist_ok=True)
    port = procs.free_port()
    config, dropped = imagegate_config(workdir, port, upstream_base, workers, overrides)
    path = workdir / "imagegate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [sys.executable, "-m", "imagegate.cli", "serve", "--config", str(path)]
    proc = procs.start(
        "imagegate",
        argv,
        log_path=workdir / "imagegate.log",
        cpus=cpus,
        env={**clean_env(), **(env or {})},
        cwd=workdir,
    )
    try:
        procs.wait_http(proc, f"http://127.0.0.1:{port}/health", timeout_s=60)
    except BaseException:
        proc.stop()
        raise
    if workspace_limits:  # e.g. a rate limit every request is checked against (never hit)
        limit_workspace(f"http://127.0.0.1:{port}", workspace_limits)
    info = {
        "config_keys_missing": dropped,
        "workers": workers,
        "cpus": cpus,
        "overrides": overrides or [],
        "env": env or {},
        "workspace_limits": workspace_limits or {},
    }
    return Endpoint(
        "imagegate", f"http://127.0.0.1:{port}/v2/router", f"Bearer {BENCH_KEY}", proc, info
    )


def limit_workspace(base: str, limits: dict[str, Any]) -> None:
    """PATCH the bench key's workspace (``default``) before any image request."""
    request = urllib.request.Request(
        f"{base}/v2/admin/workspaces/default",
        data=json.dumps(limits).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {BENCH_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        resp.read()


def observed_features(workdir: Path) -> dict[str, Any]:
    """What the gateway actually wrote: trace DB size, blobs stored (checks 'features on')."""

    def size_of(pattern: str) -> int:
        return sum(p.stat().st_size for p in workdir.rglob(pattern) if p.is_file())

    blobs = workdir / "blobs"
    return {
        "sqlite_bytes": size_of("*.db") + size_of("*.sqlite") + size_of("*.db-wal"),
        "blob_files": sum(1 for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else 0,
        "upload_tmp_left": sum(1 for p in (workdir / "uploads").glob("*")),
    }


# --- LiteLLM (optional) ----------------------------------------------------------------------


def find_litellm(explicit: str | None) -> str | None:
    """The ``litellm`` CLI to compare with: ``--litellm``, ``$LITELLM_BIN``, or /tmp/benchenv."""
    for candidate in (explicit, os.environ.get("LITELLM_BIN"), "/tmp/benchenv/bin/litellm"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("litellm")
    return found


def start_litellm(workdir: Path, binary: str, upstream_base: str, *, cpus: str | None) -> Endpoint:
    """LiteLLM proxy, one worker, no DB, no callbacks, no retries: its plain forwarding path."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = procs.free_port()
    models = [
        {
            "model_name": name,
            "litellm_params": {"model": name, "api_base": upstream_base, "api_key": UPSTREAM_KEY},
            "model_info": {"mode": "image_generation"},
        }
        for name in ("openai/dall-e-2", "openai/gpt-image-1")
    ]
    config = {
        "model_list": models,
        "litellm_settings": {
            "num_retries": 0,
            "drop_params": True,
            "telemetry": False,
            "callbacks": [],
            "success_callback": [],
            "cache": False,
        },
        "general_settings": {
            "master_key": LITELLM_KEY,
            "disable_spend_logs": True,
            "store_model_in_db": False,
            "background_health_checks": False,
        },
    }
    path = workdir / "litellm.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {
        **clean_env(),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_ADMIN_UI": "True",
    }
    for name in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL"):
        env.pop(name, None)
    argv = [
        binary,
        "--config",
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    proc = procs.start("litellm", argv, log_path=workdir / "litellm.log", cpus=cpus, env=env)
    try:
        procs.wait_http(proc, f"http://127.0.0.1:{port}/health/liveliness", timeout_s=120)
    except BaseException:
        proc.stop()
        raise
    return Endpoint("litellm", f"http://127.0.0.1:{port}/v1", f"Bearer {LITELLM_KEY}", proc)
