"""Head to head: one loop against another, round by round, with a sign test that says whether the difference
is more than this machine's noise.

Facts that shape it:
- The main tables give each loop's ratio against stock asyncio, median over rounds. Comparing two such medians
  (``epoll 1.21x`` against ``uvloop 1.19x``) throws away the pairing: both loops ran in the same round, a few
  hundred milliseconds apart, under the same neighbours. The ratio of the two loops *within* a round cancels
  most of what the machine did to that round.
- On a shared two-core machine single rounds of the echo rows span 2x for every loop, so a median alone
  cannot rank two loops that are 10% apart. How many rounds each loop won can: with no real difference each
  round is a coin toss, and the two-sided binomial (sign) test gives the chance of a split at least this
  lopsided. It assumes nothing about the shape of the noise (which here is neither normal nor symmetric).
- A verdict is given only at p < 0.05; otherwise the pair is "not distinguishable" on this run, whatever the
  median says. With 11 rounds that takes 10 wins of 11; with 21 rounds, 16.
- "Not distinguishable" is not "equal": the confidence interval of the median per-round ratio says how large a
  difference the run can still hide. It comes from the same binomial as the sign test (order statistics: no
  assumption about the noise either), so it excludes 1.0 when the sign test gives a verdict. With 11 rounds it
  runs from the 2nd to the 10th smallest ratio (98.8% coverage), with 21 rounds from the 6th to the 16th (97.3%):
  the narrowest such interval that still covers at least 95%. Below 6 rounds no interval reaches 95%; the whole
  range is given, with its coverage.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from .harness import Result, Sample, SuiteResult, table, thread_cpu_ratio, user_cpu_ratio

#: Below this sign-test p-value a head-to-head result is called a win or a loss.
SIGNIFICANCE = 0.05


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free confidence interval for the median of ``values``: ``(low, high, coverage)``, the
    ``k``-th smallest and ``k``-th largest value for the largest ``k`` whose coverage, ``1 - 2 P(B <= k - 1)``
    with ``B ~ Binomial(n, 1/2)``, is still at least ``confidence``; the full range (``k = 1``) when none is."""
    if not values:
        raise ValueError("no values to take a median interval of")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    ordered = sorted(values)
    n = len(ordered)

    def coverage(k: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n

    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= confidence:
        k += 1
    return ordered[k - 1], ordered[n - k], coverage(k)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the probability, if each round were a fair coin toss, of a split at least as
    uneven as ``wins`` against ``losses`` (ties left out beforehand). 1.0 when there is nothing to test."""
    if wins < 0 or losses < 0:
        raise ValueError(f"counts must not be negative, got {wins} and {losses}")
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@dataclasses.dataclass(frozen=True)
class HeadToHead:
    """``loop`` against ``other`` on one benchmark and one metric: per-round ratios, >1 = ``loop`` is better."""

    benchmark: str
    metric: str  # "rate", "user CPU/op" or "thread CPU/op"
    loop: str
    other: str
    ratios: tuple[float, ...]

    @property
    def wins(self) -> int:
        return sum(r > 1.0 for r in self.ratios)

    @property
    def losses(self) -> int:
        return sum(r < 1.0 for r in self.ratios)

    @property
    def p(self) -> float:
        return sign_test(self.wins, self.losses)

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def interval(self) -> tuple[float, float, float]:
        """The 95% confidence interval of the median per-round ratio, and its exact coverage."""
        return median_interval(self.ratios)

    @property
    def verdict(self) -> str:
        if self.p >= SIGNIFICANCE:
            return "not distinguishable"
        return "ahead" if self.wins > self.losses else "behind"

    def summary(self) -> dict[str, Any]:
        low, high, coverage = self.interval
        return {"benchmark": self.benchmark, "metric": self.metric, "loop": self.loop, "other": self.other,
                "ratio_median": self.median, "ratio_min": min(self.ratios), "ratio_max": max(self.ratios),
                "ratio_ci_low": low, "ratio_ci_high": high, "ci_coverage": coverage,
                "rounds": len(self.ratios), "wins": self.wins, "losses": self.losses, "p": self.p,
                "verdict": self.verdict}


def _per_round(a: Result, b: Result, better: Callable[[Sample, Sample], float | None]) -> tuple[float, ...]:
    # Samples are appended round by round; a cell that failed has an error and is not compared at all.
    out = []
    for sa, sb in zip(a.samples, b.samples, strict=False):
        r = better(sa, sb)
        if r is not None:
            out.append(r)
    return tuple(out)


def _rate(clock: str) -> Callable[[Sample, Sample], float | None]:
    def ratio(sa: Sample, sb: Sample) -> float | None:
        ra, rb = sa.metric(clock), sb.metric(clock)
        return ra / rb if rb > 0 and math.isfinite(ra) and math.isfinite(rb) else None
    return ratio


def compare(suite: SuiteResult, loop: str, other: str) -> list[HeadToHead]:
    """``loop`` against ``other`` on every benchmark both ran without a skip or an error: the rate in the
    benchmark's clock and, for the I/O benchmarks, user and user+sys CPU per operation (less is better, so the
    ratio is other's over loop's)."""
    for name in (loop, other):
        if name not in suite.columns:
            raise ValueError(f"{name!r} was not measured in this run (loops: {', '.join(suite.columns)})")
    out = []
    for bench in suite.benchmarks:
        a, b = suite.results[(bench.name, loop)], suite.results[(bench.name, other)]
        if not (a.ok and b.ok):
            continue
        metrics: list[tuple[str, Callable[[Sample, Sample], float | None]]] = [("rate", _rate(a.clock))]
        if bench.report_cpu:
            metrics += [("user CPU/op", user_cpu_ratio), ("thread CPU/op", thread_cpu_ratio)]
        for metric, better in metrics:
            ratios = _per_round(a, b, better)
            if ratios:
                out.append(HeadToHead(bench.name, metric, loop, other, ratios))
    return out


def compare_all(suite: SuiteResult, other: str) -> list[HeadToHead]:
    """Every measured loop except ``other`` itself (and the baseline, unless ``other`` is it) against ``other``."""
    loops = [c for c in suite.columns if c != other and (c != suite.columns[0] or other == suite.columns[0])]
    return [h for loop in loops for h in compare(suite, loop, other)]


def format_versus(rows: Sequence[HeadToHead]) -> str:
    """A table per pair of loops: per-round ratio median [lowest-highest], rounds won/lost, p, verdict."""
    if not rows:
        return "Head to head: nothing to compare (no benchmark ran on both loops)."
    out: list[str] = []
    pairs = list(dict.fromkeys((h.loop, h.other) for h in rows))
    for loop, other in pairs:
        mine = [h for h in rows if (h.loop, h.other) == (loop, other)]
        header = ["benchmark", "metric", f"{loop}/{other}", "confidence interval", "won-lost", "p", "verdict"]
        body = [[h.benchmark, h.metric, f"{h.median:.2f}x [{min(h.ratios):.2f}-{max(h.ratios):.2f}]",
                 _interval_text(h.interval), f"{h.wins}-{h.losses}", f"{h.p:.3f}", h.verdict] for h in mine]
        out += [f"Head to head, {loop} against {other}, the same rounds: per-round ratio (>1 = {loop} better; "
                f"for CPU/op rows: {other}'s CPU over {loop}'s) median [lowest-highest round], the confidence "
                f"interval of that median (coverage), rounds won-lost, two-sided sign test p; a verdict only at "
                f"p < {SIGNIFICANCE}",
                table(header, body, left=2), ""]
    return "\n".join(out).rstrip()



def _interval_text(interval: tuple[float, float, float]) -> str:
    low, high, coverage = interval
    return f"{low:.2f}-{high:.2f} ({coverage:.0%})"
