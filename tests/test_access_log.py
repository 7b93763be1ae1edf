"""The access log: one line per request over real HTTP, in both formats, never a secret."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fakes.faulty import FaultyUpstream, hang
from fakes.openai import FakeOpenAI, Reply
from live import GEN, LiveGateway, live_gateway, post

from imagegate.api.accesslog import AccessLogMiddleware
from imagegate.telemetry.access import (
    LOGGER,
    WRITER,
    AccessHandler,
    AccessRecord,
    AccessWriter,
    emit,
    json_line,
    text_line,
)

KEY = "sk-access-log-secret-key-4417"
AUTH = {"Authorization": f"Bearer {KEY}"}
PROMPT = "a zebra reading the quarterly report 9931"
TEXT_HEAD = re.compile(r"^(\S+) (\S+) (\S+) (\d{3}) (.*)$")
PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


class Captured:
    """The ``imagegate.access`` output of one test (an ``AccessHandler`` on a StringIO)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[str]:
        WRITER.flush()
        return self.stream.getvalue().splitlines()

    def until(self, found: Callable[[list[str]], bool], timeout_s: float = 5.0) -> list[str]:
        """The lines once ``found`` holds for them (the line is queued just after the
        response is sent, so the client may see the answer first)."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = self.lines()
            if found(lines) or time.monotonic() > deadline:
                return lines
            threading.Event().wait(0.01)


@contextlib.contextmanager
def access_handlers(*handlers: logging.Handler) -> Iterator[None]:
    """The access logger with only ``handlers`` (at INFO, not propagating) for a while."""
    logger = logging.getLogger(LOGGER)
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers[:] = handlers
    logger.propagate, logger.level = False, logging.INFO
    try:
        yield
    finally:
        logger.handlers[:], logger.propagate, logger.level = saved


@pytest.fixture
def captured() -> Iterator[Captured]:
    WRITER.flush()  # lines of earlier tests go where they were going
    out = Captured()
    with access_handlers(AccessHandler(out.stream)):
        yield out
        WRITER.flush()


def parse(line: str, log_format: str) -> dict[str, Any]:
    """A line back into its fields (text: ``-`` is None, numbers stay strings)."""
    if log_format == "json":
        parsed: dict[str, Any] = json.loads(line)
        return parsed
    head = TEXT_HEAD.match(line)
    assert head, line
    fields: dict[str, Any] = dict(
        zip(("time", "method", "path", "status"), head.groups(), strict=False)
    )
    for name, value in PAIR.findall(head.group(5)):
        fields[name] = json.loads(value) if value.startswith('"') else value
    for name, value in fields.items():
        fields[name] = None if value == "-" else value
    fields["status"] = int(fields["status"])
    return fields


def by_trace(lines: list[str], log_format: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for line in lines:
        fields = parse(line, log_format)
        trace_id = fields.get("trace_id", fields.get("trace"))
        assert trace_id, line
        assert trace_id not in out, f"two lines for {trace_id}"
        out[trace_id] = fields
    return out


def field(fields: dict[str, Any], text_name: str, json_name: str) -> Any:
    return fields[json_name] if json_name in fields else fields[text_name]


@pytest.fixture(scope="module")
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_one_line_per_request(
    captured: Captured, openai: FakeOpenAI, make_config: Any, log_format: str
) -> None:
    openai.reset()
    config = make_config(api_keys=[KEY], providers=openai.providers(), log_format=log_format)
    cached = {
        "model": "placeholder/x",
        "prompt": "a fox",
        "orq": {"cache": {"type": "exact_match"}},
    }
    with live_gateway(config) as gw:
        ok = post(gw, GEN, headers=AUTH, json={"model": "placeholder/x", "prompt": "a fox"})
        bad = post(gw, GEN, headers=AUTH, json={"model": "placeholder/x"})  # no prompt
        openai.script(Reply(status=500), Reply(status=500))
        failed = post(gw, GEN, headers=AUTH, json={"model": "openai/dall-e-2", "prompt": "x"})
        miss = post(gw, GEN, headers=AUTH, json=cached)
        hit = post(gw, GEN, headers=AUTH, json=cached)
        control = httpx.get(f"{gw.url}/v2/traces?limit=1", headers=AUTH, timeout=10)
        missing = httpx.get(f"{gw.url}/no/such/route", timeout=10)
        wrong_method = httpx.delete(f"{gw.url}/health", timeout=10)
        anonymous = post(gw, GEN, json={"model": "placeholder/x", "prompt": "a fox"})
        responses = [ok, bad, failed, miss, hit, control, missing, wrong_method, anonymous]
        ids = [r.headers["x-orq-trace-id"] for r in responses]
        lines = captured.until(lambda got: len(got) >= len(responses))
    assert [r.status_code for r in responses][:2] == [200, 400]
    assert failed.status_code >= 500 and miss.headers["x-orq-cache"] == "MISS"
    assert hit.headers["x-orq-cache"] == "HIT"
    assert len(lines) == len(responses), lines
    seen = by_trace(lines, log_format)
    assert set(seen) == set(ids)
    for response, trace_id in zip(responses, ids, strict=True):
        assert seen[trace_id]["status"] == response.status_code
    key_id = field(seen[ids[0]], "key", "key_id")
    assert key_id and key_id.startswith("key_")
    line = seen[ids[0]]
    assert (line["method"], line["path"]) == ("POST", GEN)
    assert field(line, "ws", "workspace") == "default"
    assert str(line["attempts"]) == "1"
    assert line["cache"] is None
    if log_format == "json":
        assert (line["model"], line["served_model"]) == ("placeholder/x", "placeholder/x")
        assert line["cost_usd"] == 0.0 and line["duration_ms"] > 0
        assert line["request_bytes"] == len(ok.request.content)
        assert line["response_bytes"] == len(ok.content)
        assert set(line) == set(AccessRecord.__slots__)  # every field, always
    else:
        assert line["model"] == "placeholder/x->placeholder/x"
        assert float(line["ms"]) > 0 and line["cost"] == "0.000000"
        assert (int(line["in"]), int(line["out"])) == (len(ok.request.content), len(ok.content))
    failed_line = seen[ids[2]]
    assert str(failed_line["attempts"]) == "1"  # one attempt, no retry asked
    assert field(failed_line, "key", "key_id") == key_id
    assert str(seen[ids[3]]["cache"]) == "MISS" and str(seen[ids[3]]["attempts"]) == "1"
    assert seen[ids[4]]["cache"] == "HIT" and str(seen[ids[4]]["attempts"]) == "0"
    assert seen[ids[5]]["path"] == "/v2/traces"  # no query string
    assert field(seen[ids[5]], "key", "key_id") == key_id  # control routes name who asked
    assert field(seen[ids[5]], "ws", "workspace") == "default"
    assert seen[ids[6]]["path"] == "/no/such/route"
    assert seen[ids[7]]["method"] == "DELETE"
    assert field(seen[ids[8]], "key", "key_id") is None  # 401: no key id


def test_client_disconnect_is_499(captured: Captured, make_config: Any) -> None:
    with FaultyUpstream() as upstream:
        upstream.script("a/slow", then=hang(2.0))
        config = make_config(providers=upstream.providers("a"))
        with live_gateway(config) as gw:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(
                    f"{gw.url}{GEN}",
                    json={"model": "a/slow", "prompt": "a slow fox"},
                    timeout=httpx.Timeout(5.0, read=0.3),
                )
            lines = captured.until(lambda got: any(" 499 " in line for line in got))
    [line] = lines
    fields = parse(line, "text")
    assert (fields["status"], fields["path"], fields["model"]) == (499, GEN, "a/slow->-")
    assert fields["trace"] and fields["ws"] == "default"


def test_nothing_secret_or_base64(captured: Captured, make_config: Any) -> None:
    config = make_config(api_keys=[KEY])
    with live_gateway(config) as gw:
        b64 = post(
            gw,
            GEN,
            headers=AUTH,
            json={
                "model": "placeholder/x",
                "prompt": PROMPT,
                "response_format": "b64_json",
            },
        )
        url = post(
            gw,
            GEN,
            headers=AUTH,
            json={
                "model": "placeholder/x",
                "prompt": PROMPT,
                "response_format": "url",
                "orq": {"identity": {"id": "user-7", "display_name": "Ada"}},
            },
        )
        signed = url.json()["data"][0]["url"]
        assert "sig=" in signed
        image = httpx.get(signed, timeout=10)
        refused = httpx.get(signed.replace("sig=", "sig=0"), timeout=10)
        lines = captured.until(lambda got: len(got) >= 4)
    assert (b64.status_code, url.status_code, image.status_code) == (200, 200, 200)
    assert refused.status_code >= 400
    assert len(lines) == 4
    text = "\n".join(lines)
    encoded = b64.json()["data"][0]["b64_json"]
    assert len(encoded) > 1000
    for start in range(0, len(encoded) - 24, 997):
        assert encoded[start : start + 24] not in text
    query = signed.partition("?")[2]
    for secret in (KEY, PROMPT, "zebra", "quarterly", "Bearer", query, "sig=", "expires=", "Ada"):
        assert secret not in text
    files = [parse(line, "text") for line in lines if "/v2/files/" in line]
    assert [f["status"] for f in files] == [200, refused.status_code]
    assert all("?" not in f["path"] for f in files)


def test_off_writes_nothing(captured: Captured, make_config: Any) -> None:
    with live_gateway(make_config(access_log=False)) as gw:
        assert post(gw, GEN, json={"model": "placeholder/x", "prompt": "a fox"}).status_code == 200
        assert httpx.get(f"{gw.url}/health", timeout=10).status_code == 200
        assert httpx.get(f"{gw.url}/nope", timeout=10).status_code == 404
    assert captured.lines() == []


def test_probes_write_no_line(captured: Captured, make_config: Any) -> None:
    """A load balancer's probes every few seconds would drown the log: /health/live and
    /health/ready are not logged; /health and everything else still are."""
    with live_gateway(make_config()) as gw:
        for path in ("/health/live", "/health/ready", "/health/live"):
            assert httpx.get(f"{gw.url}{path}", timeout=10).status_code == 200
        assert httpx.get(f"{gw.url}/health", timeout=10).status_code == 200
    lines = captured.stream.getvalue().splitlines()
    assert len(lines) == 1 and "/health" in lines[0] and "/health/" not in lines[0]


def test_lines_written_at_shutdown(captured: Captured, make_config: Any) -> None:
    """Stopping the server writes what is queued (no waiting on the writer thread)."""
    gw = LiveGateway(make_config())
    with gw:
        assert httpx.get(f"{gw.url}/health", timeout=10).status_code == 200
    assert len(captured.stream.getvalue().splitlines()) == 1


# --- the writer and the middleware, without HTTP -------------------------------------------


def test_full_queue_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    writer = AccessWriter(capacity=3, interval_s=60.0)  # its thread waits: nothing drains
    out = io.StringIO()
    with access_handlers(AccessHandler(out)):
        for i in range(5):
            writer.submit((lambda raw: f"line {raw[0]}", (i,)))
        assert writer.stats()["pending"] == 3 and writer.dropped == 2
        with caplog.at_level(logging.WARNING, logger="imagegate"):
            assert writer.flush()
    assert out.getvalue() == "line 0\nline 1\nline 2\n"
    assert writer.stats() == {"pending": 0, "written": 3, "dropped": 2, "failed": 0}
    assert "2 line(s) dropped" in caplog.text


def test_other_handlers_get_one_record_per_line() -> None:
    """An operator's own handler (a logging config) sees ordinary records, filters apply."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    with access_handlers(Collect()):
        emit(["GET /a 200 100%", "GET /b 404"])
    assert [r.getMessage() for r in records] == ["GET /a 200 100%", "GET /b 404"]
    assert {r.name for r in records} == {LOGGER}


def test_a_line_cannot_be_split_or_forged() -> None:
    record = AccessRecord(
        0.0, "GET", '/a b\n2026 GET /forged 200 key="x"', 200, 1.0, 0, 0, model="m=1"
    )
    line = text_line(record)
    assert "\n" not in line and line.startswith("1970-01-01T00:00:00.000Z GET ")
    assert f" {json.dumps(record.path)} 200 " in line
    assert ' model="m=1"->- ' in line
    assert json.loads(json_line(record))["path"] == record.path


def test_unhandled_error_logs_500_and_lifespan_flushes() -> None:
    lines: list[str] = []
    writer = AccessWriter(interval_s=60.0)

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        raise RuntimeError("boom")

    middleware = AccessLogMiddleware(broken, log_format="json", writer=writer)

    async def run() -> None:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/x",
            "raw_path": b"/x?sig=1",
            "headers": [],
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"abc", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            return None

        with pytest.raises(RuntimeError):
            await middleware(scope, receive, send)

        async def shutdown() -> dict[str, Any]:
            return {"type": "lifespan.shutdown"}

        async def lifespan_send(message: dict[str, Any]) -> None:
            lines.append(out.getvalue())  # what was written when the server was told

        await middleware({"type": "lifespan"}, shutdown, lifespan_send)

    out = io.StringIO()
    with access_handlers(AccessHandler(out)):
        asyncio.run(run())
    [written] = lines
    fields = json.loads(written)
    assert (fields["status"], fields["path"], fields["trace_id"]) == (500, "/x", None)
