"""The benchmark harness must keep working: a seconds-long smoke run, no speed thresholds.

It runs ``python -m bench.run --smoke`` exactly as ``make bench`` would (real fake upstream,
real ``imagegate serve`` process, the Python load generator) and checks that every scenario
produced error-free measurements, a chart and a summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from bench.scenarios import SCENARIOS
from bench.targets import fit_to_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--no-docs", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    results["_out"] = str(out)
    return results


def test_every_scenario_measured_without_errors(smoke: dict) -> None:  # type: ignore[type-arg]
    rows = smoke["rows"]
    failed = [r for r in rows if "failed" in r]
    assert not failed, failed
    for scenario in SCENARIOS:
        for target in ("direct", "imagegate"):
            if target not in scenario.targets:
                continue
            mine = [r for r in rows if r["scenario"] == scenario.name and r["target"] == target]
            assert mine, f"no row for {scenario.name}/{target}"
            for row in mine:
                assert row["requests"] > 0, row
                assert row["errors"] == 0 and row["non2xx"] == 0, row
                assert row["p50_ms"] > 0, row
                if target == "imagegate":
                    assert row["gw_cpu_ms_per_req"] > 0, row
                    assert row["rss_peak_mb"] > 10, row


def test_soak_counts_every_request(smoke: dict) -> None:  # type: ignore[type-arg]
    (soak,) = [r for r in smoke["rows"] if r["scenario"] == "soak"]
    assert soak["all_ok"] is True
    assert soak["requests"] == soak["conc"] == 20
    # the upstream held each request 300 ms, so nothing may come back faster than that
    assert soak["p50_ms"] >= 300


def test_added_latency_and_goals_computed(smoke: dict) -> None:  # type: ignore[type-arg]
    small = [r for r in smoke["rows"] if r["scenario"] == "small" and r["target"] == "imagegate"]
    assert all("added_p50_ms" in r for r in small)
    assert {g["scenario"] for g in smoke["goals"]} == {g.scenario for g in report.GOALS}
    assert all(g["value"] is not None for g in smoke["goals"]), smoke["goals"]


def test_outputs_written(smoke: dict) -> None:  # type: ignore[type-arg]
    out = Path(smoke["_out"])
    assert (out / "benchmarks.png").read_bytes().startswith(b"\x89PNG")
    summary = (out / "summary.md").read_text()
    assert "| small | imagegate |" in summary and "### Targets" in summary


def test_docs_section_rewritten_in_place(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        f"# Title\n\nhand-written intro\n\n{report.BEGIN}\nold table\n{report.END}\n"
        "\n## Analysis\nkept\n"
    )
    report.write_docs(doc, "new table")
    text = doc.read_text()
    assert "old table" not in text and "new table" in text
    assert text.index("hand-written intro") < text.index("new table") < text.index("kept")


def test_config_fitted_to_known_keys() -> None:
    from imagegate.config import Config

    fitted, dropped = fit_to_model(
        {"port": 1, "no_such_key": 1, "cache": {"backend": "memory", "nope": 2}}, Config
    )
    assert fitted == {"port": 1, "cache": {"backend": "memory"}}
    assert dropped == ["no_such_key", "cache.nope"]
