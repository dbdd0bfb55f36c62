"""``python -m multiloop bench [--quick] [--json F] [--chart F.png] ...``: the benchmark suite, every available
backend against stock asyncio (and uvloop when installed), as same-run ratios. See :mod:`multiloop.bench`."""

from __future__ import annotations

NAME = "bench"
HELP = "benchmark every backend against stock asyncio (and uvloop), as same-run ratios"
RAW = True  # the suite has its own options (python -m multiloop bench --help)


def main(argv: list[str]) -> int:
    from ..bench.cli import main as bench_main

    return bench_main(argv)
