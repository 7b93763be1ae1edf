"""Instructions per request, counted by callgrind: a cost number that does not move with the
machine's noise (``python -m bench.instructions --scenario small --requests 200``).

CPU time per request on a shared VM moves ±15 % between identical runs, more than most
changes cost. ``valgrind --tool=callgrind`` counts instructions instead, which repeat within a
few percent for the same code and inputs. The gateway runs under callgrind with the bench
config (``targets.imagegate_config``) against the bench's fake upstream (not under
valgrind); after a warm-up the counters are zeroed, ``--requests`` requests are sent one at a
time, and the counters are dumped. The number is the gateway's instructions for those
requests, threads included. Compare two trees with ``--src``::

    python -m bench.instructions --scenario small                  # this tree
    python -m bench.instructions --scenario small --src /tmp/base  # another checkout

It is slow (valgrind runs Python about 50x slower: ~1 minute for 200 small requests) and
needs valgrind (Debian's package); it is not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from . import procs, scenarios, targets

ROOT = Path(__file__).resolve().parent.parent


def _wait_health(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                answer.read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("instructions: the gateway did not start under valgrind") from None
            time.sleep(1)


def _totals(out_dir: Path) -> int:
    """The ``totals:`` line of the dump ``callgrind_control -d`` wrote (``callgrind.out.1``)."""
    dump = out_dir / "callgrind.out.1"
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise SystemExit(f"instructions: no totals in {dump}")


def measure(src: Path, scenario_name: str, requests: int, warmup: int) -> int:
    """Instructions the gateway of tree ``src`` spent on ``requests`` requests."""
    scenario = scenarios.BY_NAME[scenario_name]
    body, content_type = scenarios.body_for(scenario, scenarios.Settings())
    env = {**targets.clean_env(), "PYTHONPATH": f"{src / 'src'}{os.pathsep}{src}"}
    work = Path(tempfile.mkdtemp(prefix="imagegate-instructions-"))
    (work / "uploads").mkdir()
    upstream_port, port = procs.free_port(), procs.free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "bench.upstream", "--port", str(upstream_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config, _ = targets.imagegate_config(work, port, f"http://127.0.0.1:{upstream_port}/v1", 1, [])
    (work / "imagegate.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={work / 'callgrind.out'}",
        sys.executable,
        "-m",
        "imagegate.cli",
        "serve",
        "--config",
        str(work / "imagegate.yaml"),
    ]
    log = (work / "gateway.log").open("wb")
    gateway = subprocess.Popen(argv, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v2/router/images/{scenario.operation}"
    headers = {"content-type": content_type, "authorization": f"Bearer {targets.BENCH_KEY}"}

    def one() -> None:
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        with urllib.request.urlopen(request, timeout=300) as answer:
            answer.read()

    try:
        _wait_health(f"{base}/health", gateway, timeout_s=600)
        for _ in range(warmup):
            one()
        subprocess.run(
            ["callgrind_control", "-z", str(gateway.pid)], check=True, capture_output=True
        )
        for _ in range(requests):
            one()
        subprocess.run(
            ["callgrind_control", "-d", str(gateway.pid)], check=True, capture_output=True
        )
        return _totals(work)
    finally:
        gateway.send_signal(signal.SIGKILL)
        upstream.terminate()
        gateway.wait()
        upstream.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="small", choices=["small", "large", "url", "edit"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--src", type=Path, default=ROOT, help="the checkout to measure")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("instructions: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    total = measure(args.src.resolve(), args.scenario, args.requests, args.warmup)
    print(f"{args.scenario}: {total} instructions for {args.requests} requests,")
    print(f"  {total / args.requests:,.0f} per request ({args.src})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
