"""Head-to-head comparison in the benchmark (``--versus``): per-round pairing, the sign test, the verdicts, and
the CLI around it. Synthetic samples for the arithmetic (no timing), one tiny real run for the command."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import multiloop
from multiloop.bench import harness, versus


def _backend() -> str:
    env = os.environ.get("MULTILOOP_TEST_BACKENDS", "").replace(",", " ").split()
    return env[0] if env and env[0] != "all" else multiloop.default_backend()


@pytest.mark.parametrize("wins, losses, p", [
    (0, 0, 1.0),
    (5, 5, 1.0),
    (11, 0, 2 / 2 ** 11),
    (0, 11, 2 / 2 ** 11),
    (10, 1, 2 * (1 + 11) / 2 ** 11),
    (9, 2, 2 * (1 + 11 + 55) / 2 ** 11),
    (16, 5, 2 * sum(math.comb(21, i) for i in range(6)) / 2 ** 21),
])
def test_sign_test_is_the_exact_two_sided_binomial(wins, losses, p):
    assert versus.sign_test(wins, losses) == pytest.approx(p)


def test_sign_test_refuses_negative_counts():
    with pytest.raises(ValueError, match="must not be negative"):
        versus.sign_test(-1, 3)


@pytest.mark.parametrize("n, k", [(11, 2), (21, 6), (41, 14)])
def test_the_median_interval_is_the_widest_order_statistic_pair_that_covers_95_percent(n, k):
    values = [float(i) for i in range(1, n + 1)]
    low, high, coverage = versus.median_interval(list(reversed(values)))  # order of the rounds does not matter
    assert (low, high) == (k, n + 1 - k)
    assert coverage == pytest.approx(1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n)
    assert coverage >= 0.95
    narrower = 1 - 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    assert narrower < 0.95  # one step narrower would no longer cover 95%


def test_with_few_rounds_the_interval_is_the_whole_range_with_its_true_coverage():
    assert versus.median_interval([1.2, 0.9, 1.0, 1.1, 0.8]) == (0.8, 1.2, pytest.approx(1 - 2 / 32))
    assert versus.median_interval([1.3]) == (1.3, 1.3, 0.0)
    with pytest.raises(ValueError, match="no values"):
        versus.median_interval([])
    with pytest.raises(ValueError, match="between 0 and 1"):
        versus.median_interval([1.0], confidence=1.5)


@pytest.mark.parametrize("wins, losses, excludes_one", [(16, 5, True), (15, 6, False), (10, 1, True), (9, 2, False)])
def test_the_interval_excludes_one_exactly_when_the_sign_test_gives_a_verdict(wins, losses, excludes_one):
    ratios = tuple([1.2] * wins + [0.9] * losses)
    h = versus.HeadToHead("echo", "rate", "a", "b", ratios)
    low, high, _ = h.interval
    assert (not low <= 1.0 <= high) is excludes_one
    assert (h.verdict != "not distinguishable") is excludes_one
    summary = h.summary()
    assert (summary["ratio_ci_low"], summary["ratio_ci_high"]) == (low, high)


def _s(rate: float, user_per_op: float = 1e-6, cpu_per_op: float = 2e-6, ops: int = 1000) -> harness.Sample:
    wall = ops / rate
    return harness.Sample(ops=ops, wall=wall, user=0.0, sys=0.0, loop_user=user_per_op * ops,
                          loop_cpu=cpu_per_op * ops)


def _suite(a_samples, b_samples, *, report_cpu=False, clock="wall", a_error=None):
    bench = harness.Benchmark("echo", lambda n: None, 10, "requests", "synthetic",  # type: ignore[arg-type, return-value]
                              report_cpu=report_cpu, clock=clock)
    base = [_s(100.0) for _ in a_samples]
    results = {
        ("echo", "asyncio"): harness.Result("echo", "asyncio", 10, "requests", clock, samples=base),
        ("echo", "a"): harness.Result("echo", "a", 10, "requests", clock, samples=list(a_samples), error=a_error),
        ("echo", "b"): harness.Result("echo", "b", 10, "requests", clock, samples=list(b_samples)),
    }
    return harness.SuiteResult(columns=["asyncio", "a", "b"], missing={}, benchmarks=[bench], results=results,
                               repeat=len(a_samples))


def test_a_loop_faster_in_every_round_is_ahead_and_the_ratios_are_per_round():
    # The machine slows every round differently; a is 1.5x b within each round.
    speeds = [1.0, 0.4, 2.0, 0.7, 1.3, 0.5, 1.8, 0.9, 1.1, 0.6, 1.5]
    suite = _suite([_s(150 * k) for k in speeds], [_s(100 * k) for k in speeds])
    (h,) = versus.compare(suite, "a", "b")
    assert h.metric == "rate" and len(h.ratios) == 11
    assert all(r == pytest.approx(1.5) for r in h.ratios)
    assert (h.wins, h.losses) == (11, 0) and h.verdict == "ahead"
    (back,) = versus.compare(suite, "b", "a")
    assert back.verdict == "behind" and back.median == pytest.approx(1 / 1.5)


def test_a_split_decision_is_not_distinguishable_whatever_the_median():
    # 9 of 11 rounds won at 1.3x: p = 0.065, so no verdict although the median is well above 1.
    a = [_s(130)] * 9 + [_s(70)] * 2
    suite = _suite(a, [_s(100)] * 11)
    (h,) = versus.compare(suite, "a", "b")
    assert h.median == pytest.approx(1.3) and (h.wins, h.losses) == (9, 2)
    assert h.p == pytest.approx(0.0654296875) and h.verdict == "not distinguishable"


def test_cpu_rows_compare_cost_per_operation_and_leave_out_zero_user_samples():
    # a needs half of b's thread CPU per op; its tick-sampled user time reads 0 in two rounds (left out).
    a = [_s(100, user_per_op=0.0 if i < 2 else 1e-6, cpu_per_op=1e-6) for i in range(11)]
    b = [_s(100, user_per_op=2e-6, cpu_per_op=2e-6) for _ in range(11)]
    rows = {h.metric: h for h in versus.compare(_suite(a, b, report_cpu=True), "a", "b")}
    assert set(rows) == {"rate", "user CPU/op", "thread CPU/op"}
    assert rows["rate"].verdict == "not distinguishable" and (rows["rate"].wins, rows["rate"].losses) == (0, 0)
    assert len(rows["user CPU/op"].ratios) == 9 and rows["user CPU/op"].median == pytest.approx(2.0)
    assert rows["thread CPU/op"].median == pytest.approx(2.0) and rows["thread CPU/op"].verdict == "ahead"


def test_a_failed_cell_is_not_compared_and_an_unmeasured_loop_is_refused():
    suite = _suite([_s(100)] * 3, [_s(100)] * 3, a_error="VerificationError: wrong byte")
    assert versus.compare(suite, "a", "b") == []
    assert "nothing to compare" in versus.format_versus([])
    with pytest.raises(ValueError, match="'uvloop' was not measured"):
        versus.compare(suite, "a", "uvloop")


def test_compare_all_pairs_every_other_loop_with_the_named_one():
    suite = _suite([_s(120)] * 3, [_s(100)] * 3)
    assert {(h.loop, h.other) for h in versus.compare_all(suite, "b")} == {("a", "b")}
    assert {(h.loop, h.other) for h in versus.compare_all(suite, "asyncio")} == {("a", "asyncio"), ("b", "asyncio")}
    text = versus.format_versus(versus.compare_all(suite, "b"))
    assert "Head to head, a against b" in text and "3-0" in text


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "multiloop", "bench", *args], cwd=Path.home(),
                          capture_output=True, text=True, timeout=300)


def test_cli_versus_writes_the_head_to_head_into_the_json_and_refuses_an_unmeasured_loop():
    backend = _backend()
    proc = _run_cli("--quick", "--scale", "0.05", "--repeat", "2", "--connections", "0", "--backends", backend,
                    "--only", "call_soon", "--versus", "asyncio", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    (row,) = data["versus"]
    assert (row["benchmark"], row["metric"], row["loop"], row["other"]) == ("call_soon", "rate", backend, "asyncio")
    assert row["rounds"] == 2 and row["wins"] + row["losses"] <= 2 and row["verdict"] == "not distinguishable"
    assert row["ratio_ci_low"] == row["ratio_min"] and row["ratio_ci_high"] == row["ratio_max"]
    assert row["ci_coverage"] == 0.5  # two rounds: the whole range covers the median half the time
    assert "Head to head" in proc.stderr
    refused = _run_cli("--backends", backend, "--versus", "no_such_loop")
    assert refused.returncode != 0 and "--versus no_such_loop: not among the loops measured" in refused.stderr
