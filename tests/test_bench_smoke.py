"""The benchmark suite (``python -m multiloop bench``, shipped in :mod:`multiloop.bench`) runs and its output is
well formed, and its checks catch a loop that gets a result wrong. No timing assertions: speed is not tested here.

One backend only (the first of ``MULTILOOP_TEST_BACKENDS``, else the default one), tiny sizes. The command runs
from a temporary directory, so it uses the installed package (compiled or not), as a user's would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import multiloop
from multiloop.bench import echo, harness, memory
from multiloop.bench.cli import ALL

REPO = Path(__file__).resolve().parent.parent
TINY = ["--quick", "--scale", "0.05", "--repeat", "1", "--connections", "0"]


def _backend() -> str:
    env = os.environ.get("MULTILOOP_TEST_BACKENDS", "").replace(",", " ").split()
    if env and env[0] != "all":
        return env[0]
    return multiloop.default_backend()


def _run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "multiloop", "bench", *args], cwd=cwd or Path.home(),
                          capture_output=True, text=True, timeout=300)


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


def test_stock_asyncio_on_another_selector_is_measured_only_when_named():
    # The like-for-like reference for the poll and select backends (harness.STOCK_ON_SELECTOR).
    default_loops = [c.name for c in harness.select_columns(None)[0]]
    assert not set(harness.STOCK_ON_SELECTOR) & set(default_loops)
    listing = _run_cli("--list")
    assert listing.returncode == 0, listing.stderr
    assert "only when named in --backends: asyncio-poll, asyncio-select" in listing.stdout
    proc = _run_cli(*TINY, "--backends", "asyncio-poll", "--only", "fd_pingpong", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["meta"]["loops"] == ["asyncio", "asyncio-poll"]
    cell = next(r for r in data["results"] if r["loop"] == "asyncio-poll")
    assert cell["error"] is None and cell["skipped"] is None, cell
    _check_ok_cell(cell)


def test_the_stock_loop_on_another_selector_really_uses_it():
    import selectors

    for name, selector_class in harness.STOCK_ON_SELECTOR.items():
        (column,) = [c for c in harness.available_columns(opt_in=[name])[0] if c.name == name]

        async def which_selector():
            import asyncio
            return type(asyncio.get_running_loop()._selector)  # the stock loop's private attribute, a probe only

        assert column.runner(which_selector) is getattr(selectors, selector_class)


@pytest.mark.parametrize("args, message", [
    (["--only", "no_such_benchmark"], "unknown benchmark"),
    (["--backends", "no_such_loop"], "cannot benchmark no_such_loop"),
])
def test_bad_names_are_refused_with_a_message(args, message):
    proc = _run_cli(*args)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_run_suite_in_process_every_core_benchmark():
    core = [b for b in ALL if b.group == "core" and b.name != "getaddrinfo_numeric"]
    columns, missing = harness.select_columns(_backend())
    suite = harness.run_suite(core, columns, repeat=2, scale=0.01, missing=missing)
    for b in core:
        for c in suite.columns:
            cell = suite.results[(b.name, c)]
            assert cell.ok, (b.name, c, cell.error, cell.skipped)
            assert len(cell.samples) == 2
            assert all(s.rate > 0 for s in cell.samples)
            if c != "asyncio":
                assert len(cell.ratios) == 2 and all(r > 0 for r in cell.ratios)
    text = harness.format_tables(suite)
    for b in core:
        assert b.name in text
    json.dumps(suite.to_json())  # serialisable


def test_echo_rows_report_exact_thread_cpu_and_what_the_client_did():
    # An echo cell carries the server thread's user+sys CPU per request next to the sampled user CPU, and the
    # load generator's CPU time and waits, which say whether the row's wall-clock rate is the client's.
    backend = _backend()
    proc = _run_cli(*TINY, "--backends", backend, "--only", "tcp_echo_protocol", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    cells = {r["loop"]: r for r in data["results"]}
    for loop, cell in cells.items():
        if cell["skipped"] is not None:
            continue
        assert cell["error"] is None, cell
        for s in cell["samples"]:
            assert s["loop_cpu"] > 0  # (loop_user, tick-sampled and read a moment apart, may even exceed it)
            assert 0 < s["peer_cpu"] and s["peer_waits"] > 0 and s["loop_sleeps"] >= 0
        assert cell["peer_busy_median"] > 0 and cell["loop_sleeps_per_op_median"] >= 0
        # Every wait of the client returns at least one reply or write readiness: never more than 2 per request.
        assert 0 < cell["peer_waits_per_op_median"] <= 2.0
        if loop != "asyncio":
            assert cell["thread_cpu_ratio_min"] <= cell["thread_cpu_ratio_median"] <= cell["thread_cpu_ratio_max"]
    table = _run_cli(*TINY, "--backends", backend, "--only", "tcp_echo_protocol")
    assert table.returncode == 0, table.stderr
    assert "tcp_echo_protocol (thread CPU/op)" in table.stdout
    assert "Load generator" in table.stdout


@pytest.mark.skipif(not hasattr(__import__("resource"), "RUSAGE_THREAD"), reason="per-thread rusage is Linux's")
def test_the_stopwatch_counts_the_times_the_thread_blocked():
    import time

    with harness.Stopwatch() as busy:
        sum(range(10_000))
    with harness.Stopwatch() as sleeping:
        for _ in range(3):
            time.sleep(0.002)
    assert sleeping.sample(1).loop_sleeps >= 3
    assert busy.sample(1).loop_sleeps < sleeping.sample(1).loop_sleeps


def _sample(peer_cpu: float, wall: float = 1.0, ops: int = 100) -> harness.Sample:
    return harness.Sample(ops=ops, wall=wall, user=0.1, sys=0.1, loop_user=0.1, loop_cpu=0.2, peer_cpu=peer_cpu,
                          peer_waits=ops // 2)


@pytest.mark.parametrize("busy, bound", [([0.95, 0.91, 0.5], True), ([0.95, 0.5, 0.4], False), ([0.9], True)])
def test_a_row_is_marked_client_bound_by_its_median_sample(busy, bound):
    cell = harness.Result("tcp_echo_protocol", "x", 100, "requests", samples=[_sample(b) for b in busy])
    assert cell.has_peer and cell.peer_bound is bound
    assert cell.summary()["peer_waits_per_op_median"] == 0.5


def test_a_benchmark_without_a_load_generator_has_no_client_figures():
    cell = harness.Result("call_soon", "x", 100, "callbacks", samples=[_sample(0.0)])
    assert not cell.has_peer and not cell.peer_bound
    assert "peer_busy_median" not in cell.summary()


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


def test_a_loop_that_gets_a_result_wrong_fails_its_cell():
    async def wrong(n: int) -> harness.Sample:
        with harness.Stopwatch() as sw:
            pass
        harness.verify(False, "1 of 2 callbacks ran")
        return sw.sample(n)

    bench = harness.Benchmark("wrong", wrong, 10, "ops", "always wrong")
    columns, _ = harness.select_columns(_backend())
    suite = harness.run_suite([bench], columns, repeat=1, scale=0.01)
    for c in suite.columns:
        assert suite.results[("wrong", c)].error == "VerificationError: verification failed: 1 of 2 callbacks ran"
    assert "ERROR" in harness.format_tables(suite)


def test_memory_per_idle_connection_is_measured_per_loop_with_a_breakdown():
    mem = memory.measure(["asyncio", _backend()], 30)
    assert [r["loop"] for r in mem["results"]] == ["asyncio", _backend()]
    for row in mem["results"]:
        assert "error" not in row, row
        assert row["tracemalloc_per_conn"] > 0
        assert set(row["breakdown"]) == set(memory.CATEGORIES)
        assert row["breakdown"]["transport"] > 0 and row["breakdown"]["protocol"] > 0
    assert mem["results"][0]["ratio"] == 1.0
    assert _backend() in memory.format_table(mem)


def test_chart_is_drawn_from_the_json(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "ratios.png"
    proc = _run_cli(*TINY, "--backends", _backend(), "--only", "call_soon,timers", "--chart", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmarks_alias_in_the_repository_still_works():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--list"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "call_soon" in proc.stdout


def test_echo_client_process_is_stopped():
    echo.close_client()
    echo.close_client()  # idempotent


@pytest.mark.parametrize("corrupt", [False, True])
def test_echo_client_counts_an_echo_that_differs_from_what_it_sent(corrupt):
    # The load generator compares every echoed byte in place (no copies): a changed byte is a mismatch.
    import socket
    import threading

    from multiloop.bench import echo_client

    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            got = 0
            while data := conn.recv(65536):
                if corrupt and got <= 70_000 < got + len(data):  # one byte of the second 64 KiB request
                    data = bytearray(data)
                    data[70_000 - got] ^= 1
                got += len(data)
                conn.sendall(data)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        result = echo_client.run_job({"family": "inet", "addr": list(listener.getsockname()), "conns": 1,
                                      "requests": 3, "size": 64 * 1024})
    finally:
        thread.join(10)
        listener.close()
    assert result["requests"] == 3
    assert result["mismatches"] == (1 if corrupt else 0)
    # It also reports its own CPU time and its waits: at least one per request (a reply must arrive).
    assert 0 < result["cpu"] and result["waits"] >= 3
