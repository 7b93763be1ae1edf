"""``GET /metrics``: Prometheus text fed by real requests through the gateway."""

from __future__ import annotations

from typing import Any

import httpx
from live import GEN, live_gateway

KEY = "sk-metrics"


def test_metrics_count_requests_attempts_and_cache(make_config: Any) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    body = {
        "model": "placeholder/m",
        "prompt": "a fox",
        "size": "32x32",
        "response_format": "b64_json",
        "cache": {"type": "exact_match", "ttl": 60},
    }
    with (
        live_gateway(make_config(api_keys=[KEY])) as gw,
        httpx.Client(base_url=gw.url, headers=auth, timeout=30) as http,
    ):
        assert http.post(GEN, json=body).headers["x-orq-cache"] == "MISS"
        assert http.post(GEN, json=body).headers["x-orq-cache"] == "HIT"
        assert http.post(GEN, json={**body, "n": 99}).status_code == 400  # refused body
        bad_size = {"model": "placeholder/m", "prompt": "x", "size": "9x9"}
        assert http.post(GEN, json=bad_size).status_code == 400  # the provider refuses it

        assert httpx.get(f"{gw.url}/metrics").status_code == 401  # same keys as the API
        r = http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    lines = set(r.text.splitlines())
    assert 'imagegate_requests_total{operation="generations",status="200"} 2' in lines
    assert 'imagegate_requests_total{operation="generations",status="400"} 2' in lines
    assert 'imagegate_images_total{operation="generations"} 2' in lines
    assert 'imagegate_upstream_attempts_total{provider="placeholder",result="ok"} 1' in lines
    assert 'imagegate_upstream_attempts_total{provider="placeholder",result="400"} 1' in lines
    assert 'imagegate_cache_lookups_total{result="hit"} 1' in lines
    assert 'imagegate_cache_lookups_total{result="miss"} 1' in lines
    assert "# TYPE imagegate_trace_writer_pending gauge" in lines


async def test_a_failed_background_image_copy_is_one_metric(
    make_config: Any, tmp_path: Any
) -> None:
    """A base64 answer does not wait for its archive copy; when that copy cannot be written
    the answer still succeeds and /metrics counts it, under the one name it always had."""
    from imagegate.gateway import Gateway

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    config = make_config(storage={"path": str(blocker), "pack_max_bytes": 0})
    async with Gateway(config) as gw:
        answer = await gw.generate(
            model="placeholder/x", prompt="fox", size="32x32", response_format="b64_json"
        )
        assert answer.data[0]["b64_json"]
        await gw.output.drain()
        assert "imagegate_blob_background_failures_total 1" in gw.metrics_text().splitlines()
