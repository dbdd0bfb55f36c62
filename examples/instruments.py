"""An instrument that tracks task lifetimes, and the loop's own timings, on a small program.

    python examples/instruments.py [--backend NAME]

Prints one line per finished task (name, lifetime, steps), then the timings summary; the callback that blocked
the loop for 0.2 s is reported as the slowest, with its file and line.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import multiloop
from multiloop.timings import format_timings


class TaskTracker(multiloop.Instrument):
    """How long each task lived, and how many steps (callbacks) it took."""

    def __init__(self) -> None:
        self.started: dict[asyncio.Task[object], float] = {}
        self.steps: dict[asyncio.Task[object], int] = {}

    def task_spawned(self, task: asyncio.Task[object]) -> None:
        self.started[task] = time.monotonic()
        self.steps[task] = 0

    def before_callback(self, handle: asyncio.Handle) -> None:
        task = getattr(getattr(handle, "_callback", None), "__self__", None)  # a task step runs a task method
        if task in self.steps:
            self.steps[task] += 1

    def task_exited(self, task: asyncio.Task[object]) -> None:
        lifetime = time.monotonic() - self.started.pop(task)
        print(f"task {task.get_name()}: {lifetime * 1000:.0f} ms, {self.steps.pop(task)} steps")


def block_the_loop() -> None:
    time.sleep(0.2)  # a blocking call in a callback: what timings are for


async def worker(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0.01)


async def main() -> None:
    asyncio.get_running_loop().call_later(0.02, block_the_loop)
    async with asyncio.TaskGroup() as group:
        for n in (1, 3, 5):
            group.create_task(worker(n), name=f"worker-{n}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend")
    args = parser.parse_args()
    loop = multiloop.new_loop(args.backend, timings=True)
    loop.add_instrument(TaskTracker())
    try:
        loop.run_until_complete(main())
        timings = loop.stats().timings
        assert timings is not None
        print("\n".join(format_timings(timings, indent="")))
    finally:
        loop.close()
