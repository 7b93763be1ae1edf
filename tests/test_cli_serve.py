"""`imagegate serve` as a subprocess: make run's path, bad configs, the bind policy, env."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakes.openai import FakeOpenAI
from live import free_port, serve_env

IMAGEGATE = str(Path(sys.executable).with_name("imagegate"))


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IMAGEGATE, *args],
        cwd=tmp_path,
        env=serve_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Started servers; each is ended by its own PID (SIGTERM) at the latest here."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _start(
    procs: list[subprocess.Popen[str]], args: list[str], tmp_path: Path, port: int, **env: str
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [IMAGEGATE, "serve", *args],
        cwd=tmp_path,
        env=serve_env(tmp_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs.append(proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("imagegate serve did not come up")


def test_make_run_path_answers_the_readme_curl_and_stops_on_sigterm(
    tmp_path: Path, serve: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    proc = _start(serve, ["--port", str(port)], tmp_path, port)
    r = httpx.post(
        f"http://127.0.0.1:{port}/v2/router/images/generations",
        headers={"content-type": "application/json"},
        content=b'{"model":"placeholder/sketch","prompt":"a fox","response_format":"b64_json"}',
    )
    assert r.status_code == 200, r.text
    png = base64.b64decode(r.json()["data"][0]["b64_json"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    stderr = proc.communicate()[1]
    assert "Application shutdown complete" in stderr and "Traceback" not in stderr


def test_env_overrides_reach_the_server(tmp_path: Path, serve: list[subprocess.Popen[str]]) -> None:
    port = free_port()
    with FakeOpenAI() as fake:
        _start(
            serve,
            [],
            tmp_path,
            port,
            IMAGEGATE_PORT=str(port),
            IMAGEGATE_API_KEYS="sk-one,sk-two",
            OPENAI_API_KEY=fake.api_key,
            OPENAI_BASE_URL=fake.url + "/v1",
        )
        url = f"http://127.0.0.1:{port}/v1/images/generations"
        body = {"model": "openai/gpt-image-1", "prompt": "p"}
        assert httpx.post(url, json=body).status_code == 401
        r = httpx.post(url, json=body, headers={"authorization": "Bearer sk-two"})
        assert r.status_code == 200, r.text
        assert fake.violations == [] and len(fake.requests) == 1


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [("port: abc\n", "port"), ("routing: {deadline_s: -1}\n", "routing.deadline_s")],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, yaml_text: str, key: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    done = _run(["serve", "--config", str(config)], tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{key}:" in lines[0], done.stderr


def test_public_bind_without_keys_is_refused(tmp_path: Path) -> None:
    done = _run(["serve", "--host", "0.0.0.0", "--port", str(free_port())], tmp_path)
    assert done.returncode == 2
    assert "api_keys" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("host", ['""', '"::"'])
def test_every_interface_bind_without_keys_is_refused(tmp_path: Path, host: str) -> None:
    """``host: ""`` binds every interface, like 0.0.0.0: not loopback."""
    config = tmp_path / "imagegate.yaml"
    config.write_text(f"host: {host}\nport: {free_port()}\n")
    done = _run(["serve", "--config", str(config)], tmp_path)
    assert done.returncode == 2
    assert "api_keys" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_bad_env_exits_2(tmp_path: Path) -> None:
    done = _run(["serve"], tmp_path, IMAGEGATE_PORT="eighty")
    assert done.returncode == 2 and "port:" in done.stderr


def test_a_busy_port_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    """Checked (and held) before "serving on": no startup, no uvicorn error, exit 2."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(["serve", "--port", str(port)], tmp_path, IMAGEGATE_API_KEYS="sk-x")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"imagegate: port {port} on 127.0.0.1 is already in use"]


def test_port_0_serves_on_the_port_it_names(
    tmp_path: Path, serve: list[subprocess.Popen[str]]
) -> None:
    proc = subprocess.Popen(
        [IMAGEGATE, "serve", "--port", "0"],
        cwd=tmp_path,
        env=serve_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    serve.append(proc)
    assert proc.stderr is not None
    for line in proc.stderr:  # ends at the latest when the process does
        if line.startswith("imagegate: serving on "):
            break
    else:
        raise AssertionError(f"exited {proc.wait()} without serving")
    port = int(line.rsplit(":", 1)[1])
    assert port > 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200
            break
        except httpx.TransportError:
            time.sleep(0.05)
    else:
        raise AssertionError("no answer on the port it named")


@pytest.mark.parametrize(
    ("data_dir", "says"),
    [
        ("{tmp}/a-file/data", "data_dir: cannot create {tmp}/a-file/data: Not a directory"),
        ("{tmp}/a-file", "data_dir: {tmp}/a-file is not a directory"),
        ("/proc", "data_dir: /proc is not writable: "),  # unwritable for root too
    ],
)
def test_an_unusable_data_dir_is_one_line(tmp_path: Path, data_dir: str, says: str) -> None:
    (tmp_path / "a-file").write_text("")
    where = data_dir.format(tmp=tmp_path)
    done = _run(
        ["serve", "--port", str(free_port())],
        tmp_path,
        IMAGEGATE_DATA_DIR=where,
        IMAGEGATE_API_KEYS="sk-x",
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagegate: " + says.format(tmp=tmp_path))


def test_the_module_and_the_console_script_are_one_command(tmp_path: Path) -> None:
    """``python -m imagegate.cli`` (what the benchmarks run) lists the same commands as the
    ``imagegate`` script: serve and the store tools alike."""
    outs = [
        subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        for argv in ([sys.executable, "-m", "imagegate.cli", "--help"], [IMAGEGATE, "--help"])
    ]
    assert [out.returncode for out in outs] == [0, 0]
    assert outs[0].stdout == outs[1].stdout
    for command in ("serve", "traces", "prompts", "keys", "workspaces", "usage", "config"):
        assert command in outs[0].stdout
