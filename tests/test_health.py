"""``/health/live`` and ``/health/ready`` over real HTTP: what a load balancer probes.

Each dependency is made unreachable for real (a closed port for Redis, PostgreSQL and S3), and
the answer must name that part and only that part; ``lifecycle.ready_required`` decides which
parts fail readiness. Probes need no key even when the API does.
"""

from __future__ import annotations

from typing import Any

import httpx
from live import free_port, live_gateway

from imagegate.lifecycle import DRAIN

KEY = "sk-health"


def get(url: str, path: str) -> httpx.Response:
    return httpx.get(f"{url}{path}", timeout=30)


def test_live_and_ready_answer_without_a_key(make_config: Any) -> None:
    with live_gateway(make_config(api_keys=[KEY])) as gw:
        live = get(gw.url, "/health/live")
        ready = get(gw.url, "/health/ready")
        assert get(gw.url, "/metrics").status_code == 401  # the rest still needs the key
        assert get(gw.url, "/health").status_code == 200  # unchanged
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert live.headers["cache-control"] == "no-store"
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"]["store"]["ok"] is True
    assert body["checks"]["blobs"]["ok"] is True
    assert body["checks"]["redis"] == {"ok": None, "detail": "not configured"}


def test_an_unreachable_redis_is_named_and_fails_readiness(make_config: Any) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with live_gateway(make_config(redis_url=dead)) as gw:
        ready = get(gw.url, "/health/ready")
        live = get(gw.url, "/health/live")
    assert live.status_code == 200  # liveness asks no dependency
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["redis"]["ok"] is False
    assert str(dead) not in ready.text  # the kind of failure, never the address
    assert body["checks"]["store"]["ok"] is True
    assert body["checks"]["blobs"]["ok"] is True


def test_a_part_left_out_of_ready_required_is_reported_but_does_not_fail(
    make_config: Any,
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    lifecycle = {"ready_required": ["store", "blobs"]}
    with live_gateway(make_config(redis_url=dead, lifecycle=lifecycle)) as gw:
        ready = get(gw.url, "/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"]["ok"] is False


def test_an_unreachable_database_fails_readiness(make_config: Any) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with live_gateway(make_config(database_url=url)) as gw:
        ready = get(gw.url, "/health/ready")
        live = get(gw.url, "/health/live")
    assert live.status_code == 200
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["store"]["ok"] is False
    assert checks["blobs"]["ok"] is True


def test_an_unreachable_blob_store_fails_readiness(make_config: Any) -> None:
    storage = {
        "backend": "s3",
        "bucket": "b",
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "access_key_id": "k",
        "secret_access_key": "s",
    }
    with live_gateway(make_config(storage=storage)) as gw:
        ready = get(gw.url, "/health/ready")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["blobs"]["ok"] is False
    assert checks["store"]["ok"] is True


def test_a_draining_replica_is_not_ready_at_once(make_config: Any) -> None:
    """While the process drains (after its first SIGTERM), ready is 503 without checking
    anything; live stays 200 (the process is fine, it is leaving)."""
    with live_gateway(make_config()) as gw:
        assert get(gw.url, "/health/ready").status_code == 200
        DRAIN.begin(30.0)
        try:
            ready = get(gw.url, "/health/ready")
            live = get(gw.url, "/health/live")
        finally:
            DRAIN.reset()
    assert ready.status_code == 503 and ready.json() == {"status": "draining"}
    assert live.status_code == 200
