"""OpenTelemetry: spans exported over OTLP/HTTP to a collector in the test, W3C trace context.

The collector is a small aiohttp server accepting ``POST /v1/traces`` (protobuf, decoded with
``opentelemetry-proto``); the upstream is the fake OpenAI, which records the headers it got.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from fakes.openai import FakeOpenAI, Reply
from fleetkit import Replica, write_config
from live import GEN, LiveAiohttp, free_port, live_gateway
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from waiting import wait_until

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


class Collector:
    """An OTLP/HTTP trace receiver: every span it was sent, with its attributes decoded."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.content_types: list[str] = []
        self._lock = threading.Lock()
        self.app = web.Application()
        self.app.router.add_post("/v1/traces", self._traces)

    async def _traces(self, request: web.Request) -> web.Response:
        self.content_types.append(request.content_type)
        export = ExportTraceServiceRequest.FromString(await request.read())
        with self._lock:
            for resource in export.resource_spans:
                for scope in resource.scope_spans:
                    self.spans.extend(scope.spans)
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    def named(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id.hex() == trace_id]


def attrs(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    receiver = Collector()
    with LiveAiohttp(receiver.app) as server:
        yield receiver, server.url


def test_a_retried_request_exports_its_span_and_one_child_per_attempt(
    make_config: Any, collector: tuple[Collector, str]
) -> None:
    receiver, url = collector
    telemetry = {"otlp_endpoint": url, "export_delay_s": 0.05, "service_name": "ig-test"}
    with FakeOpenAI() as fake:
        fake.script(Reply(503, retry_after="0"), key="gpt-image-1")
        config = make_config(providers=fake.providers(), telemetry=telemetry)
        with live_gateway(config) as gw:
            body = {
                "model": "openai/gpt-image-1",
                "prompt": "a traced fox",
                "orq": {"retry": {"count": 1, "on_codes": [503]}},
            }
            r = httpx.post(
                f"{gw.url}{GEN}", json=body, timeout=30, headers={"traceparent": TRACEPARENT}
            )
            assert r.status_code == 200, r.text
            assert r.headers["x-orq-attempts"] == "2"
            spans = wait_until(
                lambda: len(receiver.named(TRACE_ID)) >= 3 and receiver.named(TRACE_ID),
                "three spans at the collector",
            )
        sent = [req.headers.get("traceparent", "") for req in fake.requests]
        assert fake.violations == []
    assert set(receiver.content_types) == {"application/x-protobuf"}
    (root,) = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert root.parent_span_id.hex() == PARENT_ID  # the caller's span is the parent
    assert root.name == "generate_content openai/gpt-image-1"
    got = attrs(root)
    assert got["gen_ai.operation.name"] == "generate_content"
    assert got["gen_ai.request.model"] == "openai/gpt-image-1"
    assert got["gen_ai.response.model"] == "openai/gpt-image-1"
    assert got["gen_ai.provider.name"] == "openai" and got["gen_ai.output.type"] == "image"
    assert got["http.response.status_code"] == 200 and got["imagegate.attempts"] == 2
    assert got["imagegate.trace_id"] == r.headers["x-orq-trace-id"]
    assert got["gen_ai.usage.input_tokens"] == 10
    attempts = sorted(
        (s for s in spans if s.kind == Span.SPAN_KIND_CLIENT),
        key=lambda s: attrs(s)["imagegate.attempt"],
    )
    assert [attrs(s)["imagegate.attempt"] for s in attempts] == [1, 2]
    for span in attempts:
        assert span.parent_span_id == root.span_id
        a = attrs(span)
        assert span.name == "generate_content gpt-image-1"
        assert a["gen_ai.request.model"] == "gpt-image-1"
        assert a["gen_ai.provider.name"] == "openai"
    first, second = (attrs(s) for s in attempts)
    assert first["http.response.status_code"] == 503 and "error.type" in first
    assert attempts[0].status.code == Status.STATUS_CODE_ERROR
    assert second["http.response.status_code"] == 200
    assert second["gen_ai.response.model"] == "gpt-image-1"
    # the provider got each attempt's own span as the parent, in the caller's trace
    assert sent == [f"00-{TRACE_ID}-{s.span_id.hex()}-01" for s in attempts]


def test_a_downloaded_image_has_a_span_under_its_attempt(
    make_config: Any, collector: tuple[Collector, str]
) -> None:
    receiver, url = collector
    telemetry = {"otlp_endpoint": url, "export_delay_s": 0.05}
    with FakeOpenAI() as fake:
        config = make_config(providers=fake.providers(), telemetry=telemetry)
        with live_gateway(config) as gw:
            body = {"model": "openai/dall-e-3", "prompt": "a fetched fox"}
            r = httpx.post(f"{gw.url}{GEN}", json=body, timeout=30)
            assert r.status_code == 200, r.text

            def three() -> list[Span]:
                with receiver._lock:
                    return receiver.spans[:] if len(receiver.spans) >= 3 else []

            spans = wait_until(three, "request, attempt and fetch spans")
    by_name = {s.name: s for s in spans}
    root = by_name["generate_content openai/dall-e-3"]
    attempt = by_name["generate_content dall-e-3"]
    fetch = by_name["GET image"]
    assert attempt.parent_span_id == root.span_id and fetch.parent_span_id == attempt.span_id
    assert attrs(fetch)["server.address"] == "127.0.0.1"
    assert len({s.trace_id for s in spans}) == 1  # no caller's traceparent: a trace of its own


def test_without_an_endpoint_the_gateway_needs_no_opentelemetry(tmp_path: Any) -> None:
    """Off means free: a whole request (with a traceparent) through the app in a process
    where ``opentelemetry`` cannot be imported, as if the ``otel`` extra were not installed
    (redis-py itself tries to import it, so "not in sys.modules" would prove nothing)."""
    script = f"""
import sys, asyncio, httpx
class NoOtel:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, NoOtel())
from imagegate.api.app import create_app
from imagegate.config import load_config
from imagegate.telemetry import otel
config = load_config(env={{}}, overrides={{"data_dir": {str(tmp_path)!r}}})
app = create_app(config)
async def main():
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post("{GEN}", json={{"model": "placeholder/x", "prompt": "p"}},
                                  headers={{"traceparent": "{TRACEPARENT}"}})
            assert r.status_code == 200, r.text
asyncio.run(main())
assert otel.ACTIVE is None
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"


def test_an_endpoint_that_is_not_http_is_a_config_error(make_config: Any) -> None:
    from imagegate.config import ConfigError

    with pytest.raises(ConfigError, match=r"telemetry\.otlp_endpoint"):
        make_config(telemetry={"otlp_endpoint": "grpc://collector:4317"})


def test_json_log_lines_name_the_request_and_its_span(
    tmp_path: Path, collector: tuple[Collector, str]
) -> None:
    """``log_format: json`` on a real ``imagegate serve``: every stderr line after the start
    is one JSON object; a warning logged inside a request (the cache's Redis is down) carries
    the request's trace id and the OpenTelemetry trace id the caller sent."""
    _, url = collector
    config = write_config(
        tmp_path / "imagegate.yaml",
        {
            "data_dir": str(tmp_path / "data"),
            "log_format": "json",
            "cache": {"backend": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0"},
            "telemetry": {"otlp_endpoint": url, "export_delay_s": 0.05},
        },
    )
    replica = Replica(config, tmp_path).wait_up()
    try:
        body = {
            "model": "placeholder/x",
            "prompt": "logged",
            "orq": {"cache": {"type": "exact_match"}},
        }
        r = httpx.post(
            f"{replica.url}{GEN}", json=body, headers={"traceparent": TRACEPARENT}, timeout=30
        )
        assert r.status_code == 200, r.text
        trace_id = r.headers["x-orq-trace-id"]

        def lines() -> list[dict[str, Any]]:
            text = replica.log.read_text()
            found = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            return found if any(d.get("path") == GEN for d in found) else []

        logged = wait_until(lines, "the warning and the access line in the log")
    finally:
        replica.stop()
    text = replica.log.read_text().splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("imagegate: serving"))
    assert all(line.startswith("{") for line in text[start + 1 :]), text[start + 1 :]
    for line in text[start + 1 :]:
        assert "trace_id" in json.loads(line)
    (warning,) = [d for d in logged if d.get("logger") == "imagegate.cache"]
    assert warning["level"] == "warning" and "unreachable" in warning["message"]
    assert warning["trace_id"] == trace_id and warning["otel_trace_id"] == TRACE_ID
    (access,) = [d for d in logged if d.get("path") == GEN]
    assert access["trace_id"] == trace_id
