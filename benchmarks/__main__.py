"""``python -m benchmarks``: run the suite, print the tables, optionally write JSON.

Examples::

    python -m benchmarks                         # everything, every loop available here
    python -m benchmarks --quick                 # a few seconds: smaller N, 3 rounds
    python -m benchmarks --backends epoll,poll --only call_soon,timers --repeat 9
    python -m benchmarks --json results.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import echo, micro
from .harness import Benchmark, format_tables, run_suite, select_columns

ALL: list[Benchmark] = [*micro.BENCHMARKS, *echo.BENCHMARKS]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="multiloop vs stock asyncio: loop-core micro-benchmarks and loopback echo servers. "
                    "Every number is a ratio against stock asyncio measured in the same process, interleaved.")
    p.add_argument("--quick", action="store_true", help="samples 1/4 as long, and 3 rounds (a few seconds)")
    p.add_argument("--backends", metavar="NAMES",
                   help="comma-separated loops to compare with stock asyncio: multiloop backend names, "
                        "'trio-asyncio', 'uvloop' (default: all available)")
    p.add_argument("--only", metavar="NAMES", help="comma-separated benchmark names (default: all)")
    p.add_argument("--skip", metavar="NAMES", help="comma-separated benchmark names to leave out")
    p.add_argument("--repeat", type=int, metavar="N", help="interleaved rounds per benchmark (default 5, quick 3)")
    p.add_argument("--scale", type=float, default=1.0, metavar="F",
                   help="multiply the time per sample by F (on top of --quick); below 1 also shrinks warm-ups")
    p.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto",
                   help="what 'per second' means: loop-thread CPU time or elapsed time (default: per "
                        "benchmark; cpu where the loop thread does all the work)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-' for stdout)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and loops, then exit")
    return p.parse_args(argv)


def _pick(spec: str | None, skip: str | None) -> list[Benchmark]:
    by_name = {b.name: b for b in ALL}
    chosen = [b for b in ALL if b.default]
    if spec:
        names = [s.strip() for s in spec.split(",") if s.strip()]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
        chosen = [by_name[n] for n in names]
    if skip:
        drop = {s.strip() for s in skip.split(",")}
        chosen = [b for b in chosen if b.name not in drop]
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    columns, missing = select_columns(args.backends)
    benchmarks = _pick(args.only, args.skip)
    if args.list:
        for b in ALL:
            extra = "" if b.default else "  (only with --only)"
            print(f"{b.name:<22} {b.unit:<12} {b.group:<5} {b.clock}{extra}")
        print("loops:", ", ".join(c.name for c in columns))
        for name, why in missing.items():
            print(f"  not available: {name}: {why}")
        return 0
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 5)
    if repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    scale = args.scale * (0.25 if args.quick else 1.0)
    to_json_stdout = args.json == "-"
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if to_json_stdout else \
        (lambda line: print(line, flush=True))
    log(f"loops: {', '.join(c.name for c in columns)}; {len(benchmarks)} benchmarks, {repeat} rounds, "
        f"scale {scale:g}")
    try:
        suite = run_suite(benchmarks, columns, repeat=repeat, scale=scale, missing=missing,
                          clock=None if args.clock == "auto" else args.clock, progress=log)
    finally:
        echo.close_client()
    log("")
    log(format_tables(suite))
    if args.json:
        text = json.dumps(suite.to_json(), indent=1)
        if to_json_stdout:
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
            log(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
