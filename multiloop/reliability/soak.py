"""The soak mode: every scenario on every backend, round after round, for as long as asked; each run in a
worker process of its own, its figures folded into one summary per scenario and backend.

Facts that shape it:
- Some faults show only with time or volume (a leak of one fd per thousand connections, memory that grows
  per round, a timer heap that is never purged), so the soak repeats the scenarios at their ``"soak"`` size
  with a new seed each round and keeps every result.
- One process per run: a crash, a hang (killed after the scenario's timeout) or a leak stays in that run,
  and ``ru_maxrss`` is that run's peak.
- The deadline is checked before a run starts: the last runs finish after it.

Summary: per scenario and backend, runs, failed runs (with the first messages and their seeds, to replay
one with ``python -m multiloop.reliability SCENARIO BACKEND SIZE SEED``), and each numeric figure folded:
counts added up, everything else (latencies, peaks, rates, fds) the worst value seen.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from .harness import SCENARIOS, Result, run_isolated

#: Figures that are counts of work done: the summary adds them up. Any other number: the worst (largest).
SUMMED = frozenset({"bytes_verified", "connections", "connections_verified", "examples", "operations",
                    "api_calls", "children", "child_checks_passed", "threadsafe_callbacks", "readers", "pauses",
                    "flood_connections", "reports", "planted_failures"})


def fold(results: Iterable[Result]) -> dict[str, dict[str, Any]]:
    """``{"scenario/backend": summary}`` of many results."""
    summary: dict[str, dict[str, Any]] = {}
    for r in results:
        row = summary.setdefault(f"{r.scenario}/{r.backend}", {
            "scenario": r.scenario, "backend": r.backend, "runs": 0, "failed": 0, "skipped": 0, "seconds": 0.0,
            "failures": [], "figures": {}})
        row["runs"] += 1
        row["seconds"] = round(row["seconds"] + r.seconds, 1)
        if r.skipped:
            row["skipped"] += 1
            row["skip_reason"] = r.skipped
            continue
        if r.failures:
            row["failed"] += 1
            if len(row["failures"]) < 5:
                row["failures"].append({"seed": r.seed, "messages": r.failures[:3]})
        _fold_figures(row["figures"], r.figures)
    return summary


def _fold_figures(into: dict[str, Any], figures: dict[str, Any]) -> None:
    for name, value in figures.items():
        if isinstance(value, dict):
            _fold_figures(into.setdefault(name, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            old = into.get(name)
            if old is None:
                into[name] = value
            elif name in SUMMED:
                into[name] = old + value
            else:
                into[name] = max(old, value)
        else:
            into[name] = value


def soak(minutes: float, backends: list[str], scenarios: Iterable[str] = SCENARIOS, *, size: str = "soak",
         seed: int | None = None, report: Callable[[str], None] = print) -> list[Result]:
    """Run the scenarios on the backends round after round until ``minutes`` have passed."""
    rng = random.Random(seed)
    deadline = time.monotonic() + minutes * 60
    results: list[Result] = []
    scenarios = list(scenarios)
    round_no = 0
    while time.monotonic() < deadline or round_no == 0:
        round_no += 1
        for name in scenarios:
            for backend in backends:
                if round_no > 1 and time.monotonic() >= deadline:
                    return results
                result = run_isolated(name, backend, size, rng.randrange(2**32))
                results.append(result)
                report(describe(round_no, result))
    return results


def describe(round_no: int, r: Result) -> str:
    head = f"round {round_no} {r.scenario:<13} {r.backend:<8}"
    if r.skipped:
        return f"{head} skipped: {r.skipped}"
    if r.failures:
        return f"{head} FAILED (seed {r.seed}): " + " | ".join(m[:200] for m in r.failures[:3])
    keys = ("bytes_verified", "connections", "examples", "peak_rss_mb", "idle_passes_per_s", "fds_after")
    shown = ", ".join(f"{k}={r.figures[k]}" for k in keys if k in r.figures)
    return f"{head} ok in {r.seconds:.1f} s ({shown})"


def write_json(path: str, results: list[Result], meta: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump({"meta": meta, "summary": fold(results), "runs": [r.to_json() for r in results]}, f,
                  indent=1, default=str)
