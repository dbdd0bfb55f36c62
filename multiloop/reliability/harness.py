"""Running one scenario on one backend: a fresh loop, the figures every scenario reports, and the promises
every scenario checks.

Facts that shape it:
- A promise broken under load is a *result*, not a crash: a scenario records each broken promise as a
  failure message and goes on, so one run reports everything it saw (and the soak mode can count them).
- Figures every scenario reports: descriptors open before and after (a leak is a failure), peak RSS, and
  spins: loop passes per second while the loop has nothing to do but one long timer (an idle loop makes one
  or two; a loop spinning on an fd makes tens of thousands). ``ru_maxrss`` is the process's peak, so the
  soak runs each scenario in a process of its own (:func:`run_isolated`) for a peak that is the scenario's.
- What goes to the loop's exception handler is recorded; a scenario names the reports it expects (a
  callback that raises on purpose) and any other report is a failure.
- Lowering ``RLIMIT_NOFILE`` or forking changes the whole process: scenarios that do it are ``ISOLATED``
  and always run in a worker process (``python -m multiloop.reliability``), whose result comes back as JSON.

No timing promise is checked here: figures such as latencies are measured and reported; a promise is
stated on a mechanism (bytes verified, reports counted, passes per second while idle).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import multiloop
from multiloop.backend import Capability
from multiloop.kit.harness import open_fds  # fd -> what it points at (one helper for every leak check)

#: Every scenario module, in the order reports list them.
SCENARIOS = ("load", "emfile", "slow_readers", "bad_peers", "slowloris", "misbehaving", "hostile", "fork",
             "security")
SIZES = ("ci", "soak")

#: On a backend without the ``unlimited_fds`` capability (select: fds below FD_SETSIZE, 1024), a scenario's
#: size parameters named in its ``FD_HUNGRY`` are capped here: each connection is two fds in this process.
LIMITED_FDS_CAP = 400

#: An idle loop makes a pass or two per second; more than this while idle is a spin.
IDLE_PASSES_PER_SECOND_LIMIT = 50.0
IDLE_SECONDS = 0.5


# ------------------------------------------------------------------------------------------ figures
def peak_rss_bytes() -> int:
    """The process's peak resident set size (ru_maxrss: KiB on Linux/BSD, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def rss_bytes() -> int:
    """The current resident set size (Linux; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()


def percentile(samples: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; 0.0 for no samples."""
    data = sorted(samples)
    if not data:
        return 0.0
    rank = max(0, min(len(data) - 1, int(round(q / 100 * len(data) + 0.5)) - 1))
    return data[rank]


def latency_figures(prefix: str, samples: list[float]) -> dict[str, float]:
    """``{prefix}_p50_ms``, ``{prefix}_p99_ms`` and ``{prefix}_max_ms`` of ``samples`` (seconds)."""
    return {f"{prefix}_p50_ms": round(percentile(samples, 50) * 1e3, 3),
            f"{prefix}_p99_ms": round(percentile(samples, 99) * 1e3, 3),
            f"{prefix}_max_ms": round(max(samples, default=0.0) * 1e3, 3)}


async def idle_passes_per_second(loop: asyncio.AbstractEventLoop, seconds: float = IDLE_SECONDS) -> float:
    """Loop passes per second while this coroutine sleeps (``loop.stats()``; multiloop loops only)."""
    stats = getattr(loop, "stats", None)
    if stats is None:
        return float("nan")
    before = stats().iterations
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return (stats().iterations - before) / (time.monotonic() - start)


# ------------------------------------------------------------------------------------------ results
@dataclasses.dataclass
class Result:
    """What one run of one scenario on one backend saw."""

    scenario: str
    backend: str
    size: str
    seed: int
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Broken promises, one message each (empty: every promise held).
    failures: list[str] = dataclasses.field(default_factory=list)
    #: Why the scenario could not run here (None: it ran).
    skipped: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(**data)


class Skip(Exception):
    """Raised by a scenario that cannot run here (a missing tool or module); the message says why."""


class Context:
    """What a scenario's ``main(ctx)`` gets: its loop, its sizes, a seeded RNG, and the result to fill in."""

    def __init__(self, loop: asyncio.AbstractEventLoop, backend: str, params: dict[str, Any],
                 rng: random.Random, result: Result) -> None:
        self.loop = loop
        self.backend = backend
        self.params = params
        self.rng = rng
        self.result = result
        #: Every context given to the loop's exception handler.
        self.reports: list[dict[str, Any]] = []
        self._expected: list[Callable[[dict[str, Any]], bool]] = []

    def figure(self, name: str, value: Any) -> None:
        self.result.figures[name] = value

    def add(self, name: str, value: float) -> None:
        self.result.figures[name] = self.result.figures.get(name, 0) + value

    def check(self, condition: object, message: str) -> bool:
        """Record ``message`` as a broken promise unless ``condition`` holds; returns the condition."""
        if not condition:
            self.result.failures.append(message)
        return bool(condition)

    def expect_reports(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        """Exception-handler reports matching ``predicate`` are expected (not failures)."""
        self._expected.append(predicate)

    def take_reports(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Remove and return the reports matching ``predicate`` (to count them)."""
        taken = [r for r in self.reports if predicate(r)]
        self.reports[:] = [r for r in self.reports if not predicate(r)]
        return taken

    def unexpected_reports(self) -> list[dict[str, Any]]:
        return [r for r in self.reports if not any(p(r) for p in self._expected)]


def describe_report(report: dict[str, Any]) -> str:
    exc = report.get("exception")
    return f"{report.get('message')!r}" + (f" ({type(exc).__name__}: {exc})" if exc is not None else "")


def load_scenario(name: str) -> ModuleType:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; scenarios: {', '.join(SCENARIOS)}")
    return importlib.import_module(f"{__package__}.{name}")


def run_scenario(name: str, backend: str, size: str = "ci", seed: int | None = None, *,
                 isolate: bool | None = None, timeout: float | None = None) -> Result:
    """Run scenario ``name`` on ``backend`` at ``size`` ("ci" or "soak"). ``isolate``: in a worker process
    (default: only scenarios that must, see the module docstring)."""
    module = load_scenario(name)
    if seed is None:
        seed = random.randrange(2**32)
    if isolate is None:
        isolate = getattr(module, "ISOLATED", False)
    if isolate:
        return run_isolated(name, backend, size, seed, timeout=timeout)
    return run_in_process(module, backend, size, seed)


def _limited_fds(backend: str) -> bool:
    info = next((b for b in multiloop.backends() if b.name == backend), None)
    return info is not None and Capability.UNLIMITED_FDS not in info.capabilities


def run_in_process(module: ModuleType, backend: str, size: str, seed: int) -> Result:
    name = module.__name__.rsplit(".", 1)[-1]
    result = Result(scenario=name, backend=backend, size=size, seed=seed)
    params = dict(module.SIZES[size])
    start = time.monotonic()
    limited = _limited_fds(backend)
    for key in getattr(module, "FD_HUNGRY", ()) if limited else ():
        if params[key] > LIMITED_FDS_CAP:
            params[key] = LIMITED_FDS_CAP
            result.figures[f"{key}_capped_to"] = LIMITED_FDS_CAP  # an FD_SETSIZE backend: see LIMITED_FDS_CAP
    gc.collect()
    before = open_fds()
    try:
        loop = multiloop.new_loop(backend)
    except multiloop.MultiloopError as exc:
        result.skipped = str(exc)
        return result
    ctx = Context(loop, backend, params, random.Random(seed), result)
    reports = ctx.reports
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    try:
        try:
            loop.run_until_complete(asyncio.wait_for(module.main(ctx), params.get("timeout", 120)))
        except Skip as exc:
            result.skipped = str(exc)
        except TimeoutError:
            ctx.check(False, f"did not finish within {params.get('timeout', 120)} s")
        idle = loop.run_until_complete(idle_passes_per_second(loop))
        ctx.figure("idle_passes_per_s", round(idle, 1))
        ctx.check(not idle > IDLE_PASSES_PER_SECOND_LIMIT,
                  f"loop spins while idle: {idle:.0f} passes/s (limit {IDLE_PASSES_PER_SECOND_LIMIT:.0f})")
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    for report in ctx.unexpected_reports()[:10]:
        ctx.check(False, f"unexpected exception-handler report: {describe_report(report)}")
    gc.collect()
    after = open_fds()
    leaked = {fd: target for fd, target in after.items() if fd not in before}
    result.figures.update(fds_before=len(before), fds_after=len(after), peak_rss_mb=round(peak_rss_bytes() / 2**20, 1))
    if leaked:
        result.failures.append(f"file descriptors leaked: {leaked}")
    result.seconds = round(time.monotonic() - start, 3)
    return result


def run_isolated(name: str, backend: str, size: str, seed: int, *, timeout: float | None = None) -> Result:
    """Run the scenario in a worker process (``python -m multiloop.reliability``); its JSON result."""
    cmd = [sys.executable, "-m", __package__ or "multiloop.reliability", name, backend, size, str(seed)]
    limit = timeout if timeout is not None else load_scenario(name).SIZES[size].get("timeout", 120) + 60
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return Result(name, backend, size, seed, failures=[f"worker process did not finish within {limit} s"])
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return Result(name, backend, size, seed, failures=[
            f"worker process failed (exit status {proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}"])
    return Result.from_json(json.loads(lines[-1]))
