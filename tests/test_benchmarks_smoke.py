"""The benchmark suite runs and its output is well formed. No timing assertions: speed is not tested here.

One backend only (the first of ``MULTILOOP_TEST_BACKENDS``, else the default one), tiny sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import multiloop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `benchmarks` is a top-level directory of the repository, not installed

from benchmarks import echo, harness, micro  # noqa: E402
from benchmarks.__main__ import ALL  # noqa: E402

TINY = ["--quick", "--scale", "0.05", "--repeat", "1"]


def _backend() -> str:
    env = os.environ.get("MULTILOOP_TEST_BACKENDS", "").replace(",", " ").split()
    if env and env[0] != "all":
        return env[0]
    return multiloop.default_backend()


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def _check_ok_cell(cell: dict) -> None:
    assert cell["n"] > 0
    assert cell["clock"] in ("cpu", "wall")
    assert cell["samples"], cell
    for s in cell["samples"]:
        assert s["ops"] > 0 and s["wall"] > 0
    assert cell["rate_median"] > 0
    assert cell["rate_min"] <= cell["rate_median"] <= cell["rate_max"]


def test_cli_quick_run_prints_tables_and_writes_wellformed_json(tmp_path):
    backend = _backend()
    out = tmp_path / "bench.json"
    proc = _run_cli(*TINY, "--backends", backend, "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Ratio vs stock asyncio" in proc.stdout
    data = json.loads(out.read_text())
    assert data["meta"]["loops"] == ["asyncio", backend]
    assert data["meta"]["baseline"] == "asyncio"
    names = [b["name"] for b in data["benchmarks"]]
    assert names == [b.name for b in ALL if b.default]
    cells = {(r["benchmark"], r["loop"]): r for r in data["results"]}
    assert set(cells) == {(n, loop) for n in names for loop in ("asyncio", backend)}
    for (name, loop), cell in cells.items():
        group = next(b["group"] for b in data["benchmarks"] if b["name"] == name)
        if group == "io" and cell["skipped"] is not None:
            assert loop != "asyncio" and cell["skipped"], cell  # a reason, e.g. networking not there yet
            continue
        assert cell["error"] is None and cell["skipped"] is None, cell
        _check_ok_cell(cell)
        if loop != "asyncio":
            assert cell["ratio_median"] > 0
            assert cell["ratio_min"] <= cell["ratio_median"] <= cell["ratio_max"]


def test_only_selects_benchmarks_and_json_to_stdout():
    proc = _run_cli(*TINY, "--backends", _backend(), "--only", "call_soon,timers", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [b["name"] for b in data["benchmarks"]] == ["call_soon", "timers"]


@pytest.mark.parametrize("args, message", [
    (["--only", "no_such_benchmark"], "unknown benchmark"),
    (["--backends", "no_such_loop"], "cannot benchmark no_such_loop"),
])
def test_bad_names_are_refused_with_a_message(args, message):
    proc = _run_cli(*args)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_run_suite_in_process_every_micro_benchmark():
    columns, missing = harness.select_columns(_backend())
    suite = harness.run_suite(micro.BENCHMARKS, columns, repeat=2, scale=0.01, missing=missing)
    for b in micro.BENCHMARKS:
        for c in suite.columns:
            cell = suite.results[(b.name, c)]
            assert cell.ok, (b.name, c, cell.error, cell.skipped)
            assert len(cell.samples) == 2
            assert all(s.rate > 0 for s in cell.samples)
            if c != "asyncio":
                assert len(cell.ratios) == 2 and all(r > 0 for r in cell.ratios)
    text = harness.format_tables(suite)
    for b in micro.BENCHMARKS:
        assert b.name in text
    json.dumps(suite.to_json())  # serialisable


def test_a_benchmark_that_cannot_run_is_skipped_with_its_reason():
    async def not_here(n: int) -> harness.Sample:
        raise harness.Skip("not implemented on this loop")

    bench = harness.Benchmark("not_here", not_here, 10, "ops", "always skips")
    columns, _ = harness.select_columns(_backend())
    suite = harness.run_suite([bench], columns, repeat=1, scale=0.01)
    for c in suite.columns:
        cell = suite.results[("not_here", c)]
        assert cell.skipped == "not implemented on this loop" and not cell.samples
    assert "skipped: not implemented on this loop" in harness.format_tables(suite)


def test_echo_client_process_is_stopped():
    echo.close_client()
    echo.close_client()  # idempotent
