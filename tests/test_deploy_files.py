"""The container files, checked against the code they configure.

No container runtime runs here (docs/deployment.md says so), so the Dockerfile, the compose
example and the Caddy config are validated instead: the compose file's environment, as
Compose would interpolate it, must load through the real config loader with every
``IMAGEGATE_*`` variable landing on a config key; the probes named in the Dockerfile and the
Caddyfile must be routes of the app; the image must be a two-stage build that installs only
the wheel and runs as a non-root user.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from starlette.routing import Route

from imagegate.api.app import create_app
from imagegate.cli.serve import check_bind
from imagegate.config import explain_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# what an operator exports before ``docker compose up`` (the ``:?`` variables)
OPERATOR_ENV = {"IMAGEGATE_API_KEYS": "sk-deploy-test", "IMAGEGATE_SIGNING_KEY": "s" * 64}
COMPOSE_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise AssertionError(f"compose needs {name}: {arg}")
        return arg if op else ""

    return COMPOSE_VAR.sub(one, value)


def compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split at each FROM."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def image_env() -> dict[str, str]:
    """The ENV of the final stage (``ENV A=1 B=2``)."""
    env: dict[str, str] = {}
    for line in dockerfile_stages()[-1]:
        if line.upper().startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line[4:].split())
    return env


def gateway_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if n.startswith("gateway")}


def app_paths(make_config: Any) -> set[str]:
    app = create_app(make_config())
    return {r.path for r in app.routes if isinstance(r, Route) and "GET" in (r.methods or ())}


def test_every_gateway_setting_in_compose_is_a_config_key(tmp_path: Path) -> None:
    gateways = gateway_services()
    assert len(gateways) >= 2
    for name, service in gateways.items():
        env = {
            **image_env(),
            **{k: interpolate(str(v), OPERATOR_ENV) for k, v in service["environment"].items()},
        }
        mounts = dict(reversed(v.split(":")[:2]) for v in service["volumes"])
        config_file = DEPLOY / mounts[env["IMAGEGATE_CONFIG"]]
        env["IMAGEGATE_DATA_DIR"] = str(tmp_path / name)  # the image's path, here
        config, sources, _ = explain_config(config_file, env=env)
        consumed = {origin.removeprefix("env ") for origin in sources.values()}
        for variable in env:
            if variable.startswith("IMAGEGATE_") and variable != "IMAGEGATE_CONFIG":
                assert variable in consumed, f"{name}: {variable} sets no config key"
        assert check_bind(config) is None  # 0.0.0.0 with keys: allowed
        assert config.host == "0.0.0.0" and config.api_keys == ["sk-deploy-test"]
        assert config.storage.backend == "s3" and config.storage.endpoint_url == "http://minio:9000"
        assert config.database_url and "@postgres:5432/" in config.database_url
        assert config.shared_redis_url == "redis://redis:6379/0"
        assert config.cache.backend == "redis"  # one cache for both replicas
        grace = float(str(service["stop_grace_period"]).removesuffix("s"))
        assert grace > config.lifecycle.shutdown_grace_s, "compose would SIGKILL mid-drain"
        for needed in ("postgres", "redis", "minio-setup"):
            assert needed in service["depends_on"]


def test_compose_runs_every_shared_service() -> None:
    services = compose()["services"]
    for needed in ("lb", "postgres", "redis", "minio", "minio-setup"):
        assert needed in services
    assert services["lb"]["image"].startswith("caddy")


def test_the_balancer_probes_readiness_on_the_gateways(make_config: Any) -> None:
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    uri = re.search(r"^\s*health_uri\s+(\S+)", caddyfile, re.MULTILINE)
    assert uri is not None and uri.group(1) == "/health/ready"
    assert uri.group(1) in app_paths(make_config)
    upstreams = re.search(r"reverse_proxy\s+([^{]+)\{", caddyfile)
    assert upstreams is not None
    port = image_env()["IMAGEGATE_PORT"]
    assert sorted(upstreams.group(1).split()) == sorted(f"{n}:{port}" for n in gateway_services())
    mounted = compose()["services"]["lb"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mounted).resolve() == (DEPLOY / "Caddyfile").resolve()


def test_the_image_builds_a_wheel_and_runs_only_that_unprivileged(make_config: Any) -> None:
    build, final = dockerfile_stages()
    assert build[0].upper().endswith("AS BUILD") and "slim" in build[0]
    assert any("pip wheel" in line for line in build)
    assert "slim" in final[0]
    copies = [line for line in final if line.upper().startswith("COPY")]
    assert copies and all(line.startswith("COPY --from=build") for line in copies)
    assert any(re.search(r"pip install .*\*\.whl", line) for line in final)
    user = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert user and user[-1] not in ("root", "0")
    health = next(line for line in final if line.upper().startswith("HEALTHCHECK"))
    path = re.search(r"/health/\w+", health)
    assert path is not None and path.group(0) == "/health/live"
    assert path.group(0) in app_paths(make_config)
    exposed = next(line.split()[1] for line in final if line.upper().startswith("EXPOSE"))
    assert exposed == image_env()["IMAGEGATE_PORT"]


def test_the_build_context_is_the_wheel_sources_only() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # everything out, then the sources back in
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert kept == {"pyproject.toml", "README.md", "src"}


def test_the_kubernetes_example_probes_real_routes_and_fits_the_drain(
    make_config: Any, tmp_path: Path
) -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()))
    kinds = {doc["kind"]: doc for doc in docs if doc}
    assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} <= set(kinds)
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    paths = app_paths(make_config)
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert {"/health/ready", "/health/live"} <= paths
    config_text = kinds["ConfigMap"]["data"]["imagegate.yaml"]
    (tmp_path / "imagegate.yaml").write_text(config_text)
    env = {"S3_ACCESS_KEY_ID": "k", "S3_SECRET_ACCESS_KEY": "s", **OPERATOR_ENV}
    config = explain_config(tmp_path / "imagegate.yaml", env=env)[0]
    pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + config.lifecycle.shutdown_grace_s
    assert pod["securityContext"]["runAsNonRoot"] is True
