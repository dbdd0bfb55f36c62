"""What instruments cost: loop-core workloads with no instrument, one no-op instrument, and timings on.

Facts: the cost to watch is the one users pay without instruments (the loop's pass tests one field per pass,
never per callback), so the workloads stress the pass itself: one callback per pass (``chain``), many
callbacks per pass (``fan``), and task creation (``tasks``). Run it against several checkouts in one session,
interleaved, to compare builds (this is how the numbers in docs/stats.md were taken)::

    python benchmarks/instrument_cost.py --run none          # one measurement, printed as JSON
    python benchmarks/instrument_cost.py --compare A B ...   # A, B: directories with a multiloop package;
                                                             # rounds interleaved, medians, ratios to A
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

WORKLOADS = ("chain", "fan", "tasks")
MODES = ("none", "instrument", "timings")


class _NoOp:
    def before_callback(self, handle: object) -> None:
        pass


def _chain(loop: asyncio.AbstractEventLoop, n: int) -> None:
    left = [n]

    def step() -> None:
        left[0] -= 1
        if left[0]:
            loop.call_soon(step)
        else:
            loop.stop()

    loop.call_soon(step)
    loop.run_forever()


def _fan(loop: asyncio.AbstractEventLoop, n: int) -> None:
    def nothing() -> None:
        pass

    for _ in range(n // 1000):
        for _ in range(1000):
            loop.call_soon(nothing)
        loop.call_soon(loop.stop)
        loop.run_forever()


def _tasks(loop: asyncio.AbstractEventLoop, n: int) -> None:
    async def child() -> None:
        pass

    async def main() -> None:
        for _ in range(n // 100):
            await asyncio.gather(*[loop.create_task(child()) for _ in range(100)])

    loop.run_until_complete(main())


def run(mode: str, backend: str, workloads: list[str]) -> dict[str, float]:
    import multiloop

    sizes = {"chain": 800_000, "fan": 800_000, "tasks": 80_000}
    out = {}
    for name in workloads:
        loop = multiloop.new_loop(backend)
        if mode == "instrument":
            loop.add_instrument(_NoOp())  # type: ignore[attr-defined]
        elif mode == "timings":
            loop.enable_timings()  # type: ignore[attr-defined]
        work = globals()[f"_{name}"]
        work(loop, sizes[name] // 10)  # warm-up
        start = time.process_time()
        work(loop, sizes[name])
        out[name] = sizes[name] / (time.process_time() - start)
        loop.close()
    return out


def compare(trees: list[str], rounds: int, backend: str, modes: list[str], workloads: list[str]) -> None:
    variants = [(tree, mode) for tree in trees for mode in modes]
    samples: dict[tuple[str, str], list[dict[str, float]]] = {v: [] for v in variants}
    for _ in range(rounds):
        for tree, mode in variants:
            env = dict(os.environ, PYTHONPATH=tree)
            res = subprocess.run([sys.executable, __file__, "--run", mode, "--backend", backend,
                                  "--workloads", ",".join(workloads)], env=env,
                                 capture_output=True, text=True, check=True)
            samples[(tree, mode)].append(json.loads(res.stdout))
    base = {w: statistics.median(s[w] for s in samples[variants[0]]) for w in workloads}
    print(f"{'tree':40} {'mode':11} " + " ".join(f"{w:>16}" for w in workloads))
    for tree, mode in variants:
        med = {w: statistics.median(s[w] for s in samples[(tree, mode)]) for w in workloads}
        print(f"{tree[-40:]:40} {mode:11} " + " ".join(f"{med[w]:>9,.0f} {med[w] / base[w]:5.3f}" for w in workloads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", choices=MODES)
    parser.add_argument("--compare", nargs="+", metavar="TREE")
    parser.add_argument("--modes", default="none", help="comma-separated, for --compare (default: none)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="epoll")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated: chain, fan, tasks")
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run(args.run, args.backend, args.workloads.split(","))))
    elif args.compare:
        compare(args.compare, args.rounds, args.backend, args.modes.split(","), args.workloads.split(","))
    else:
        parser.error("--run MODE or --compare TREE...")


if __name__ == "__main__":
    main()
