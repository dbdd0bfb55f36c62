"""``python -m multiloop soak --minutes N [--backend B ...] [--scenario S ...] [--size soak|ci] [--json F]``: the
reliability suite (:mod:`multiloop.reliability`) round after round for N minutes, each run in a process of its
own; a line per run, then one summary per scenario and backend. Exit status 1 if any run broke a promise.

Load with checksummed echo and half-closes, descriptor floods, slow readers, peers that reset or vanish,
slowloris, misbehaving callbacks, hostile API input (hypothesis), fork, and security checks: see
``docs/reliability.md`` for what each promises."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from typing import Any

NAME = "soak"
HELP = "run the reliability scenarios on every backend for N minutes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..reliability import SCENARIOS, SIZES

    parser.add_argument("--minutes", type=float, required=True, help="how long to keep starting runs")
    parser.add_argument("--backend", action="append", default=[], metavar="B",
                        help="backend to soak (repeatable; default: every backend available here)")
    parser.add_argument("--scenario", action="append", default=[], choices=SCENARIOS, metavar="S",
                        help=f"scenario to run (repeatable; default: all of {', '.join(SCENARIOS)})")
    parser.add_argument("--size", choices=SIZES, default="soak", help="scenario sizes (default: soak)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the runs' seeds (replayable)")
    parser.add_argument("--json", metavar="F", help="write every run and the summary to F as JSON")


def main(args: argparse.Namespace) -> int:
    import multiloop

    from ..reliability import SCENARIOS
    from ..reliability.soak import fold, soak, write_json

    available = {b.name: b for b in multiloop.backends()}
    backends = args.backend or [name for name, b in available.items() if b.available]
    for name in backends:
        if name not in available or not available[name].available:
            reason = available[name].reason if name in available else "no such backend"
            print(f"python -m multiloop soak: error: backend {name!r} cannot run here ({reason}); "
                  f"available: {', '.join(n for n, b in available.items() if b.available)}", file=sys.stderr)
            return 2
    scenarios = args.scenario or list(SCENARIOS)
    meta: dict[str, Any] = {
        "command": " ".join(["python -m multiloop soak", *sys.argv[2:]]) if sys.argv[1:2] == ["soak"]
        else "python -m multiloop soak",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version() + (" (free-threaded)" if not getattr(sys, "_is_gil_enabled",
                                                                                  lambda: True)() else ""),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}, {os.cpu_count()} CPUs",
        "multiloop": multiloop.__version__, "backends": backends, "scenarios": scenarios, "size": args.size,
        "minutes": args.minutes, "seed": args.seed,
    }
    print(f"soak: {', '.join(scenarios)} on {', '.join(backends)} at size {args.size} for {args.minutes} min "
          f"(Python {meta['python']}, {meta['machine']})", flush=True)
    results = soak(args.minutes, backends, scenarios, size=args.size, seed=args.seed,
                   report=lambda line: print(line, flush=True))
    summary = fold(results)
    print("\nsummary:")
    for key, row in summary.items():
        status = "FAILED" if row["failed"] else ("skipped" if row["skipped"] == row["runs"] else "ok")
        print(f"  {key:<24} {status:<7} runs={row['runs']} failed={row['failed']} {row['seconds']:.0f} s")
        for failure in row["failures"]:
            print(f"      seed {failure['seed']}: {' | '.join(m[:300] for m in failure['messages'])}")
    if args.json:
        write_json(args.json, results, meta)
        print(f"\nwritten: {args.json}")
    return 1 if any(row["failed"] for row in summary.values()) else 0
