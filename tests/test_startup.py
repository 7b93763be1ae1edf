"""Starting up plainly: the startup summary (no secret in it), a missing PostgreSQL schema
created (or one line when that is refused), and ``x-orq-trace-id`` on every response."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from databases import schema_version
from fakes.openai import FakeOpenAI
from live import GEN, live_gateway, post, serve_env

from imagegate.api.traceid import TraceIdHeader
from imagegate.providers.registry import Registry
from imagegate.store import SqlStore
from imagegate.store.postgres import PostgresDriver, SchemaError, search_path_schema
from imagegate.summary import summary, summary_json

IMAGEGATE = str(Path(sys.executable).with_name("imagegate"))
PG = "127.0.0.1:5432/test"
PG_DSN = f"postgresql://postgres@{PG}"


async def _sql(sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(PG_DSN)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def sql(statement: str, *args: Any) -> Any:
    return asyncio.run(_sql(statement, *args))


@pytest.fixture
def fresh_schema() -> Iterator[str]:
    """A schema name nobody has created; dropped afterwards if something created it."""
    name = f"ig_start_{uuid.uuid4().hex[:10]}"
    assert sql("SELECT count(*) FROM pg_namespace WHERE nspname = $1", name) == 0
    yield name
    sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


class Server:
    """One ``imagegate serve`` process whose stderr is read line by line in a thread (so a
    silent process never blocks the test: every wait has a deadline)."""

    def __init__(self, args: list[str], tmp_path: Path, **env: str) -> None:
        self.proc = subprocess.Popen(
            [IMAGEGATE, "serve", *args],
            cwd=tmp_path,
            env=serve_env(tmp_path, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._ended = False  # the reader has seen the end of stderr
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout_s: float = 20) -> str:
        """The first stderr line containing ``text`` (every line read is kept in ``lines``)."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self._ended = True
                raise AssertionError(f"exited {self.proc.wait()}:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {timeout_s}s:\n" + "\n".join(self.lines))

    def stop(self) -> str:
        """SIGTERM by PID; the rest of stderr."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        while not self._ended:
            line = self._queue.get(timeout=10)
            self._ended = line is None
            if line is not None:
                self.lines.append(line)
        return "\n".join(self.lines)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def _health(port: int, timeout_s: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5)
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("no /health answer")


# --- the summary -------------------------------------------------------------------------


def test_the_summary_names_every_part_and_no_secret(
    tmp_path: Path, servers: list[Server], fresh_schema: str
) -> None:
    config = tmp_path / "imagegate.yaml"
    with FakeOpenAI() as fake:
        config.write_text(
            "api_keys: [sk-gateway-key-one, sk-gateway-key-two]\n"
            f"database_url: postgresql://postgres:db-secret-pw@{PG}?search_path={fresh_schema}\n"
            "redis_url: redis://:redis-secret-pw@127.0.0.1:6379/0\n"
            "limits: {max_prompt_chars: 1000}\n"
            "providers:\n"
            f"  openai: {{api_key: sk-provider-secret, base_url: '{fake.url}/v1'}}\n"
            "  recraft: {enabled: false}\n"
        )
        server = Server(["--config", str(config), "--port", "0"], tmp_path)
        servers.append(server)
        serving = server.wait_for("imagegate: serving on http://127.0.0.1:")
        port = int(serving.rsplit(":", 1)[1])
        assert _health(port).status_code == 200
        text = server.stop()
    head = "\n".join(server.lines[: server.lines.index(serving)])
    fake_host = fake.url.removeprefix("http://")
    assert f"listen     http://127.0.0.1:{port} (1 worker)" in head
    assert f"store      postgresql {PG} (schema {fresh_schema})" in head
    assert "redis      127.0.0.1:6379 (rate limits, budgets)" in head
    assert f"provider   openai {fake_host}, credentials set" in head
    assert "provider   placeholder (built in), no credentials needed" in head
    assert "provider   recraft (vendor default host), off: disabled in config" in head
    assert "limits     max_prompt_chars=1000" in head
    assert "api keys   2 in config" in head
    for secret in ("db-secret-pw", "redis-secret-pw", "sk-provider-secret", "sk-gateway-key"):
        assert secret not in text


def test_the_summary_as_a_function_and_as_json(make_config: Any) -> None:
    config = make_config(
        storage={
            "backend": "s3",
            "bucket": "imgs",
            "endpoint_url": "https://k:s@minio.lan:9000",
            "secret_access_key": "s3-secret",
        },
        cache={"backend": "redis", "redis_url": "redis://:pw@cache.lan:6380/1"},
    )
    lines = summary(config, Registry(config))
    assert "blobs      s3 bucket imgs at minio.lan:9000" in lines
    assert "cache      redis cache.lan:6380" in lines
    assert "limits     defaults" in lines
    assert "api keys   none in config (managed keys in the store still apply)" in lines
    assert lines[1].startswith("store      sqlite ") and lines[1].endswith("imagegate.db")
    one = summary_json(config, Registry(config))
    assert '"event":"startup"' in one and '"providers":["placeholder' in one
    assert "s3-secret" not in one and ":pw@" not in one and "\n" not in one


# --- the PostgreSQL schema ---------------------------------------------------------------


def test_a_missing_search_path_schema_is_created(
    tmp_path: Path, servers: list[Server], fresh_schema: str
) -> None:
    url = f"{PG_DSN}?search_path={fresh_schema}"
    server = Server(["--port", "0"], tmp_path, IMAGEGATE_DATABASE_URL=url)
    servers.append(server)
    port = int(server.wait_for("serving on").rsplit(":", 1)[1])
    assert _health(port).status_code == 200
    found = sql(
        "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'schema_migrations'",
        fresh_schema,
    )
    assert found == 1
    assert "Traceback" not in server.stop()


@pytest.fixture
def role_without_create() -> Iterator[str]:
    """A login role that may connect to the database but not create schemas in it."""
    role = f"ig_nocreate_{uuid.uuid4().hex[:8]}"
    sql(f'CREATE ROLE "{role}" LOGIN')
    yield role
    sql(f'DROP ROLE IF EXISTS "{role}"')


def test_a_schema_the_role_may_not_create_is_one_line(
    tmp_path: Path, role_without_create: str, fresh_schema: str
) -> None:
    url = f"postgresql://{role_without_create}@{PG}?search_path={fresh_schema}"
    done = subprocess.run(
        [IMAGEGATE, "serve", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env=serve_env(tmp_path, IMAGEGATE_DATABASE_URL=url, IMAGEGATE_API_KEYS="sk-x"),
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"imagegate: database_url: schema '{fresh_schema}' does not exist")
    assert "may not create it" in lines[0]


async def test_an_existing_schema_needs_no_create_privilege(
    role_without_create: str, fresh_schema: str
) -> None:
    """Checked before it is created: a least-privilege role keeps working with its schema."""
    await _sql(f'CREATE SCHEMA "{fresh_schema}" AUTHORIZATION "{role_without_create}"')
    url = f"postgresql://{role_without_create}@{PG}?search_path={fresh_schema}"
    store = SqlStore(PostgresDriver(url))
    try:
        await store.connect()
        assert await schema_version(store) >= 1
    finally:
        await store.close()
        await _sql(f'DROP SCHEMA IF EXISTS "{fresh_schema}" CASCADE')


def test_which_schema_a_url_names() -> None:
    assert search_path_schema(f"{PG_DSN}?search_path=ig_a") == "ig_a"
    assert search_path_schema(f"{PG_DSN}?search_path=ig_a%2C%20public") == "ig_a"
    assert search_path_schema(f"{PG_DSN}?sslmode=disable") is None
    assert search_path_schema(PG_DSN) is None
    with pytest.raises(SchemaError):
        PostgresDriver(PG_DSN, schema='x"; DROP SCHEMA public; --')


# --- x-orq-trace-id everywhere -----------------------------------------------------------


def test_every_response_carries_one_trace_id(make_config: Any) -> None:
    with live_gateway(make_config()) as gw:
        for path in ("/health", "/v2/traces", "/openapi.json", "/metrics", "/nope"):
            r = httpx.get(f"{gw.url}{path}", timeout=10)
            assert len(r.headers.get_list("x-orq-trace-id")) == 1, (path, r.headers)
        r = post(gw, GEN, json={"model": "placeholder/a", "prompt": "p", "n": 1})
        assert r.status_code == 200, r.text
        assert len(r.headers.get_list("x-orq-trace-id")) == 1
        one, two = (httpx.get(f"{gw.url}/health").headers["x-orq-trace-id"] for _ in range(2))
        assert one != two


async def test_a_trace_id_already_set_is_kept() -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"X-Orq-Trace-Id", b"mine")] if scope["path"] == "/own" else []
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        sent.append(message)

    wrapped = TraceIdHeader(app)
    for path in ("/own", "/none"):
        await wrapped({"type": "http", "path": path}, None, send)  # type: ignore[arg-type]
    own, none = sent[0]["headers"], sent[2]["headers"]
    assert own == [(b"X-Orq-Trace-Id", b"mine")]
    assert [name for name, _ in none] == [b"x-orq-trace-id"] and len(none[0][1]) == 26
