"""``python -m multiloop bench``: run the suite, print the tables, optionally write JSON and a chart.

Examples::

    python -m multiloop bench                        # everything, every loop available here
    python -m multiloop bench --quick                # shorter samples, 3 rounds, smaller memory test
    python -m multiloop bench --backends epoll,uvloop --only call_soon,timers --repeat 9
    python -m multiloop bench --backends epoll,uvloop --versus uvloop --repeat 21   # round by round, sign test
    python -m multiloop bench --json results.json --chart ratios.png
    python -m multiloop bench --memory-only --connections 5000
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import echo, micro, netops
from .harness import STOCK_ON_SELECTOR, Benchmark, format_tables, run_suite, select_columns

#: Workloads that need ``--only`` to run (a variant of another one).
_OPTIONAL = {"unix_echo_streams"}


def _benchmarks() -> list[Benchmark]:
    out = []
    for module in (micro, netops, echo):
        for name, func, n, unit, group, clock in module.BENCHMARKS:
            out.append(Benchmark(name, func, n, unit, (func.__doc__ or "").strip(), group=group,
                                 report_cpu=module is echo or name == "sock_pingpong", default=name not in _OPTIONAL,
                                 clock=clock, bytes_per_op=getattr(module, "MESSAGE_BYTES", {}).get(name, 0)))
    return out


ALL: list[Benchmark] = _benchmarks()


def parse_args(argv: Sequence[str] | None, prog: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description="multiloop vs stock asyncio (and uvloop when installed): loop-core micro-benchmarks, socket "
                    "operations, loopback echo servers and memory per idle connection. Every number is a ratio "
                    "against stock asyncio measured in the same process, interleaved; every result is checked.")
    p.add_argument("--quick", action="store_true",
                   help="samples 1/4 as long, 3 rounds, 500 idle connections (a smoke test: under a minute)")
    p.add_argument("--backends", metavar="NAMES",
                   help="comma-separated loops to compare with stock asyncio: multiloop backend names, "
                        "'trio-asyncio', 'uvloop', and stock asyncio on another selector, 'asyncio-poll' or "
                        "'asyncio-select' (only when named: the like-for-like reference for the poll and select "
                        "backends) (default: all available)")
    p.add_argument("--only", metavar="NAMES", help="comma-separated benchmark names (default: all)")
    p.add_argument("--skip", metavar="NAMES", help="comma-separated benchmark names to leave out")
    p.add_argument("--repeat", type=int, metavar="N", help="interleaved rounds per benchmark (default 5, quick 3)")
    p.add_argument("--scale", type=float, default=1.0, metavar="F",
                   help="multiply the time per sample by F (on top of --quick); below 1 also shrinks warm-ups")
    p.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto",
                   help="what 'per second' means: loop-thread CPU time or elapsed time (default: per "
                        "benchmark; cpu where the loop thread does all the work)")
    p.add_argument("--connections", type=int, metavar="N",
                   help="idle connections for the memory measurement (default 5000, quick 500; 0: skip it)")
    p.add_argument("--memory-only", action="store_true", help="only measure memory per idle connection")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-' for stdout)")
    p.add_argument("--chart", metavar="FILE.png", help="also draw the ratios as a chart (needs matplotlib: the "
                                                       "'bench' extra)")
    p.add_argument("--versus", metavar="LOOP",
                   help="also compare every other measured loop with LOOP round by round: per-round ratios, "
                        "rounds won and lost, and a sign test that says whether the difference beats the noise")
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


def main(argv: Sequence[str] | None = None, prog: str = "python -m multiloop bench") -> int:
    args = parse_args(argv, prog)
    columns, missing = select_columns(args.backends)
    if args.versus is not None and args.versus not in [c.name for c in columns]:
        raise SystemExit(f"--versus {args.versus}: not among the loops measured in this run "
                         f"({', '.join(c.name for c in columns)}); add it to --backends")
    benchmarks = [] if args.memory_only else _pick(args.only, args.skip)
    connections = args.connections if args.connections is not None else (500 if args.quick else 5000)
    if args.only and not args.memory_only and args.connections is None:
        connections = 0  # --only names rate benchmarks; memory runs when asked for
    if args.list:
        for b in ALL:
            extra = "" if b.default else "  (only with --only)"
            print(f"{b.name:<22} {b.unit:<16} {b.group:<5} {b.clock}{extra}")
        print("loops:", ", ".join(c.name for c in columns))
        named = {c.name for c in columns}
        extra_loops = [n for n in STOCK_ON_SELECTOR if n not in named]
        if extra_loops:
            print(f"  only when named in --backends: {', '.join(extra_loops)}")
        for name, why in missing.items():
            print(f"  not available: {name}: {why}")
        return 0
    if args.chart:
        from .chart import check_available
        check_available()  # before a long run, not after it
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 5)
    if repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    scale = args.scale * (0.25 if args.quick else 1.0)
    to_json_stdout = args.json == "-"
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if to_json_stdout else \
        (lambda line: print(line, flush=True))
    log(f"loops: {', '.join(c.name for c in columns)}; {len(benchmarks)} benchmarks, {repeat} rounds, "
        f"scale {scale:g}" + (f"; memory: {connections} idle connections" if connections else ""))
    try:
        suite = run_suite(benchmarks, columns, repeat=repeat, scale=scale, missing=missing,
                          clock=None if args.clock == "auto" else args.clock, progress=log)
    finally:
        echo.close_client()
    doc = suite.to_json()
    if benchmarks:
        log("")
        log(format_tables(suite))
        if args.versus is not None:
            from .versus import compare_all, format_versus
            head_to_head = compare_all(suite, args.versus)
            doc["versus"] = [h.summary() for h in head_to_head]
            log("")
            log(format_versus(head_to_head))
    if connections:
        from . import memory
        log("")
        mem = memory.measure([c.name for c in columns], connections, progress=log)
        log(memory.format_table(mem))
        doc["memory"] = mem
    if args.json:
        text = json.dumps(doc, indent=1)
        if to_json_stdout:
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
            log(f"\nJSON written to {args.json}")
    if args.chart:
        from .chart import draw
        draw(doc, args.chart)
        log(f"chart written to {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
