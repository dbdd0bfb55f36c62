"""Running benchmarks on several loops side by side, and turning the samples into ratios.

Method (why it is shaped like this):

- Absolute times are noise on a shared machine, so the only number we trust is a ratio against stock asyncio
  taken *in the same process, at nearly the same moment*. One round runs a benchmark once on every loop
  ("column"), in an order rotated from round to round so no loop always runs first (caches, CPU frequency,
  a neighbour's burst); the ratio of a round is ``rate(column) / rate(asyncio)`` of that round; the reported
  ratio is the median over rounds, with the lowest and highest round as the spread.
- Each sample gets a fresh loop (created and closed outside the timed section), a ``gc.collect()`` before it,
  and one untimed warm-up run per column and benchmark first.
- A benchmark times itself (:class:`Stopwatch`) so that setup (sockets, servers, the client process) is not
  in the number, and reports how many operations it did. A benchmark that cannot run on a loop raises
  :class:`Skip` with the reason (e.g. networking not implemented yet); any other exception is recorded as an
  error for that cell and the suite carries on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import faulthandler
import gc
import os
import platform
import resource
import selectors
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

BASELINE = "asyncio"
# A sample that takes longer than this is a hang (a lost wake-up), not a slow loop: fail the cell.
SAMPLE_TIMEOUT = 60.0
# Seconds one timed sample should take on stock asyncio (times --scale). Long enough that timer and rusage
# granularity vanish, short enough that a full run stays under a minute.
TARGET_SECONDS = {"core": 0.08, "io": 0.2}
_RUSAGE_WHO = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
# A load generator busy for this share of a sample's wall time is the bottleneck of that sample.
PEER_BOUND = 0.9


class Skip(Exception):
    """This benchmark cannot run on this loop (yet); the message says why."""


class VerificationError(AssertionError):
    """The loop under test did not do what the benchmark asked (a lost callback, a wrong byte): its cell fails."""


def verify(condition: bool, what: str) -> None:
    """Raise :class:`VerificationError` with ``what`` unless ``condition`` (checks run after the timed part)."""
    if not condition:
        raise VerificationError(f"verification failed: {what}")


@dataclasses.dataclass(frozen=True)
class Sample:
    """One timed run: ``ops`` operations in ``wall`` seconds; CPU seconds of the whole process
    (``user``/``sys``), of the loop's own thread (``loop_cpu``, user+sys, exact: CLOCK_THREAD_CPUTIME_ID)
    and the user part of that (``loop_user``: Linux RUSAGE_THREAD, else the whole process; the kernel splits
    user/sys by sampling ticks, which is why samples are made long enough). Benchmarks that drive the loop from
    a separate load generator (the echo client) also record that process's CPU seconds (``peer_cpu``) and how
    many times it waited for the server (``peer_waits``) over the sample; 0 for the others. ``loop_sleeps``: how
    many times the loop thread blocked (voluntary context switches: RUSAGE_THREAD on Linux, else the process).
    Each one means the next event had to wake it, and on a virtual machine the waker pays for that wake-up."""

    ops: int
    wall: float
    user: float
    sys: float
    loop_user: float
    loop_cpu: float
    peer_cpu: float = 0.0
    peer_waits: int = 0
    loop_sleeps: int = 0

    @property
    def rate(self) -> float:
        """Operations per wall-clock second."""
        return self.ops / self.wall if self.wall > 0 else float("inf")

    @property
    def cpu_rate(self) -> float:
        """Operations per second of the loop thread's CPU time (user+sys)."""
        return self.ops / self.loop_cpu if self.loop_cpu > 0 else float("inf")

    def metric(self, clock: str) -> float:
        return self.cpu_rate if clock == "cpu" else self.rate

    @property
    def loop_user_per_op(self) -> float:
        return self.loop_user / self.ops if self.ops else float("nan")

    @property
    def loop_cpu_per_op(self) -> float:
        return self.loop_cpu / self.ops if self.ops else float("nan")

    @property
    def peer_busy(self) -> float:
        """The load generator's CPU time as a share of the sample's wall time (1.0: it never waited)."""
        return self.peer_cpu / self.wall if self.wall > 0 else float("nan")


def user_cpu_ratio(ours: Sample, other: Sample) -> float | None:
    """``other``'s user CPU per operation over ``ours`` (>1: ours needs less), or None when either sample's
    tick-sampled user time is 0, which says nothing about the ratio."""
    if ours.loop_user > 0 and other.loop_user > 0:
        return other.loop_user_per_op / ours.loop_user_per_op
    return None


def thread_cpu_ratio(ours: Sample, other: Sample) -> float | None:
    """The same for the loop thread's exact user+sys CPU per operation."""
    if ours.loop_cpu > 0 and other.loop_cpu > 0:
        return other.loop_cpu_per_op / ours.loop_cpu_per_op
    return None


class Stopwatch:
    """Times the section a benchmark wants timed: ``with Stopwatch() as sw: ...; return sw.sample(ops)``."""

    __slots__ = ("_t0", "_r0", "_th0", "_c0", "wall", "user", "sys", "loop_user", "loop_cpu", "loop_sleeps")

    def __enter__(self) -> Stopwatch:
        self._r0 = resource.getrusage(resource.RUSAGE_SELF)
        self._th0 = resource.getrusage(_RUSAGE_WHO)
        self._c0 = time.thread_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        t1 = time.perf_counter()
        c1 = time.thread_time()
        th1 = resource.getrusage(_RUSAGE_WHO)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        self.wall = t1 - self._t0
        self.user = r1.ru_utime - self._r0.ru_utime
        self.sys = r1.ru_stime - self._r0.ru_stime
        self.loop_user = th1.ru_utime - self._th0.ru_utime
        self.loop_sleeps = th1.ru_nvcsw - self._th0.ru_nvcsw
        self.loop_cpu = c1 - self._c0

    def sample(self, ops: int, *, peer_cpu: float = 0.0, peer_waits: int = 0) -> Sample:
        return Sample(ops=ops, wall=self.wall, user=self.user, sys=self.sys, loop_user=self.loop_user,
                      loop_cpu=self.loop_cpu, peer_cpu=peer_cpu, peer_waits=peer_waits, loop_sleeps=self.loop_sleeps)


BenchFunc = Callable[[int], Awaitable[Sample]]


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """``func(n)`` is a coroutine function run *inside* the loop under test; it returns a :class:`Sample`.

    ``n`` is the warm-up size (a few ms on stock asyncio); the timed size is calibrated from the warm-up so
    that a sample on stock asyncio takes about ``TARGET_SECONDS[group]``."""

    name: str
    func: BenchFunc
    n: int
    unit: str
    description: str
    group: str = "core"  # "core" or "io"
    # I/O benchmarks also report the loop thread's CPU per operation: its user part (what the loop's own code
    # costs, but sampled by the kernel's ticks) and user+sys (exact, and it includes the syscalls the loop chose).
    report_cpu: bool = False
    # Part of a plain ``python -m multiloop bench`` run (others only with --only).
    default: bool = True
    # What "per second" means for the rate and the ratio. "cpu": per second of the loop thread's CPU time,
    # for benchmarks where the loop thread does all the work: time the OS gave to other processes is then
    # not counted, which makes ratios far steadier on a shared machine. "wall": elapsed time, for benchmarks
    # whose cost is partly in another thread or process or in waking up.
    clock: str = "cpu"
    # Bytes moved per operation in each direction, when MB/s says more than operations/s (large echoes).
    bytes_per_op: int = 0


# ------------------------------------------------------------------------------------------------ columns
@dataclasses.dataclass(frozen=True)
class Column:
    """A loop to measure: stock asyncio, a multiloop backend, or a reference implementation."""

    name: str
    kind: str  # "stock", "multiloop", "reference"
    runner: Callable[[Callable[[], Awaitable[Any]]], Any]


def _run_with_factory(factory: Callable[[], asyncio.AbstractEventLoop]) -> Callable[..., Any]:
    def run(make_coro: Callable[[], Awaitable[Any]]) -> Any:
        # asyncio.Runner shuts down async generators and the default executor and closes the loop.
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(make_coro())  # type: ignore[arg-type]
    return run


# trio-asyncio replaces these asyncio functions (and the global event loop policy) when it is imported
# (trio_asyncio/_loop.py). Left in place,
# they slow every other column (each get_running_loop() first asks trio for a current task) and break
# multiloop's own trio backend ("no running event loop": inside trio.run the patched function only knows
# trio-asyncio's loop). So the harness installs them only while a trio-asyncio sample runs.
_TRIO_ASYNCIO_PATCHES = [
    *(("asyncio.events", n) for n in ("get_event_loop_policy", "set_event_loop_policy", "_get_running_loop",
                                      "get_running_loop", "get_event_loop", "set_event_loop", "new_event_loop")),
    *(("asyncio", n) for n in ("get_event_loop_policy", "set_event_loop_policy", "_get_running_loop",
                               "get_running_loop", "get_event_loop", "set_event_loop", "new_event_loop",
                               "current_task")),
    ("asyncio.tasks", "current_task"),
    ("asyncio.events", "_event_loop_policy"),  # it also installs its TrioPolicy as the global policy
]


def _asyncio_functions() -> dict[tuple[str, str], Any]:
    return {(m, n): getattr(sys.modules[m], n) for m, n in _TRIO_ASYNCIO_PATCHES}


def _install(functions: dict[tuple[str, str], Any]) -> None:
    for (m, n), f in functions.items():
        setattr(sys.modules[m], n, f)


def _trio_asyncio_runner() -> Callable[..., Any]:
    pristine = _asyncio_functions()
    try:
        import trio_asyncio  # type: ignore[import-not-found, unused-ignore]
    finally:
        patched = _asyncio_functions()
        _install(pristine)

    def run(make_coro: Callable[[], Awaitable[Any]]) -> Any:
        async def coro() -> Any:
            return await make_coro()
        _install(patched)
        try:
            # The way trio-asyncio users run asyncio code: inside trio.run, through aio_as_trio.
            return trio_asyncio.run(trio_asyncio.aio_as_trio(coro))
        finally:
            _install(pristine)
    return run


#: Stock asyncio on a selector other than its default, measured only when named in ``--backends``. They are the
#: like-for-like reference for multiloop's ``poll`` and ``select`` backends: those make the syscall their name
#: says, whose cost per wait grows with the registered fds, while the baseline (stock's default) uses epoll
#: where it exists. Compare ``poll`` with ``asyncio-poll`` in the same run for the loop's own share.
STOCK_ON_SELECTOR = {"asyncio-poll": "PollSelector", "asyncio-select": "SelectSelector"}


def _stock_on_selector(selector_class: str) -> Callable[..., Any]:
    def factory() -> asyncio.AbstractEventLoop:
        return asyncio.SelectorEventLoop(getattr(selectors, selector_class)())
    return _run_with_factory(factory)


def available_columns(opt_in: Sequence[str] = ()) -> tuple[list[Column], dict[str, str]]:
    """Every loop we could measure here (baseline first), and {name: why not} for the rest. ``opt_in``: names
    of loops measured only when asked for (:data:`STOCK_ON_SELECTOR`)."""
    import multiloop

    columns = [Column(BASELINE, "stock", _run_with_factory(asyncio.new_event_loop))]
    missing: dict[str, str] = {}
    for info in multiloop.backends():
        if info.available:
            columns.append(Column(info.name, "multiloop", _run_with_factory(multiloop.loop_factory(info.name))))
        else:
            missing[info.name] = info.reason or "unavailable"
    try:
        columns.append(Column("trio-asyncio", "reference", _trio_asyncio_runner()))
    except ImportError as exc:
        missing["trio-asyncio"] = f"not installed ({exc})"
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
        columns.append(Column("uvloop", "reference", _run_with_factory(uvloop.new_event_loop)))
    except ImportError as exc:
        missing["uvloop"] = f"not installed ({exc})"
    for name in opt_in:
        selector_class = STOCK_ON_SELECTOR.get(name)
        if selector_class is None:
            continue
        if hasattr(selectors, selector_class):
            columns.append(Column(name, "reference", _stock_on_selector(selector_class)))
        else:
            missing[name] = f"selectors.{selector_class} does not exist on this platform"
    return columns, missing


def select_columns(spec: str | None) -> tuple[list[Column], dict[str, str]]:
    """``spec``: None/"all" for everything available, else comma-separated names (the baseline is always in)."""
    wanted = [] if not spec or spec == "all" else [name.strip() for name in spec.split(",") if name.strip()]
    columns, missing = available_columns(opt_in=wanted)
    if not wanted:
        return columns, missing
    by_name = {c.name: c for c in columns}
    unknown = [w for w in wanted if w not in by_name and w != BASELINE]
    if unknown:
        why = "; ".join(f"{u}: {missing.get(u, 'unknown loop')}" for u in unknown)
        raise SystemExit(f"cannot benchmark {', '.join(unknown)} ({why}); available: {', '.join(by_name)}")
    chosen = [columns[0]] + [by_name[w] for w in wanted if w != BASELINE]
    return chosen, {k: v for k, v in missing.items() if k in wanted}


# ------------------------------------------------------------------------------------------------ results
@dataclasses.dataclass
class Result:
    benchmark: str
    loop: str
    n: int
    unit: str
    clock: str = "wall"
    samples: list[Sample] = dataclasses.field(default_factory=list)
    ratios: list[float] = dataclasses.field(default_factory=list)  # per round, vs the baseline of that round
    cpu_ratios: list[float] = dataclasses.field(default_factory=list)  # baseline user CPU/op over ours, per round
    thread_cpu_ratios: list[float] = dataclasses.field(default_factory=list)  # the same for user+sys CPU/op
    skipped: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.samples) and self.skipped is None and self.error is None

    @property
    def has_peer(self) -> bool:
        """Whether the samples carry the load generator's figures (a benchmark with a separate client)."""
        return bool(self.samples) and all(s.peer_cpu > 0 for s in self.samples)

    def peer_figures(self) -> tuple[float, float, float] | None:
        """Medians over the samples of the load generator's busy share, its waits per operation and the loop's
        sleeps per operation; None for a benchmark without a separate client."""
        if not self.has_peer:
            return None
        return (statistics.median(s.peer_busy for s in self.samples),
                statistics.median(s.peer_waits / s.ops for s in self.samples),
                statistics.median(s.loop_sleeps / s.ops for s in self.samples))

    @property
    def peer_bound(self) -> bool:
        """The load generator was busy for at least :data:`PEER_BOUND` of the wall time in the median sample:
        the wall-clock rate is then mostly the client's speed, not the server's."""
        figures = self.peer_figures()
        return figures is not None and figures[0] >= PEER_BOUND

    def summary(self) -> dict[str, Any]:
        d: dict[str, Any] = {"benchmark": self.benchmark, "loop": self.loop, "n": self.n, "unit": self.unit,
                             "clock": self.clock, "skipped": self.skipped, "error": self.error}
        if self.ok:
            rates = [s.metric(self.clock) for s in self.samples]
            d.update(rate_median=statistics.median(rates), rate_min=min(rates), rate_max=max(rates))
            d["wall_rate_median"] = statistics.median(s.rate for s in self.samples)
            cpu = [s.loop_user_per_op for s in self.samples]
            d["loop_user_cpu_per_op_median"] = statistics.median(cpu)
            d["loop_cpu_per_op_median"] = statistics.median(s.loop_cpu / s.ops for s in self.samples)
            if self.ratios:
                d.update(ratio_median=statistics.median(self.ratios), ratio_min=min(self.ratios),
                         ratio_max=max(self.ratios))
            if self.cpu_ratios:
                d.update(cpu_ratio_median=statistics.median(self.cpu_ratios), cpu_ratio_min=min(self.cpu_ratios),
                         cpu_ratio_max=max(self.cpu_ratios))
            if self.thread_cpu_ratios:
                d.update(thread_cpu_ratio_median=statistics.median(self.thread_cpu_ratios),
                         thread_cpu_ratio_min=min(self.thread_cpu_ratios),
                         thread_cpu_ratio_max=max(self.thread_cpu_ratios))
            figures = self.peer_figures()
            if figures is not None:
                d.update(zip(("peer_busy_median", "peer_waits_per_op_median", "loop_sleeps_per_op_median"),
                             figures, strict=True))
        d["samples"] = [dataclasses.asdict(s) for s in self.samples]
        return d


@dataclasses.dataclass
class SuiteResult:
    columns: list[str]
    missing: dict[str, str]
    benchmarks: list[Benchmark]
    results: dict[tuple[str, str], Result]
    repeat: int
    elapsed: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": machine_info() | {
                "baseline": BASELINE, "repeat": self.repeat, "elapsed_s": round(self.elapsed, 2),
                "loops": self.columns, "unavailable_loops": self.missing,
            },
            "benchmarks": [{"name": b.name, "unit": b.unit, "group": b.group, "warmup_n": b.n,
                            "bytes_per_op": b.bytes_per_op, "report_cpu": b.report_cpu,
                            "description": b.description}
                           for b in self.benchmarks],
            "results": [self.results[(b.name, c)].summary() for b in self.benchmarks for c in self.columns],
        }


def machine_info() -> dict[str, Any]:
    """Where and how a run was made: Python, multiloop's hot path (compiled or pure), CPU, load."""
    from .. import __version__, compiled

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
        uvloop_version: str | None = uvloop.__version__
    except ImportError:
        uvloop_version = None
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return {
        "python": sys.version.split()[0], "implementation": platform.python_implementation(),
        "free_threaded": not gil, "platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "multiloop": __version__, "hot_path": compiled.MODE, "hot_path_reason": compiled.REASON,
        "uvloop": uvloop_version,
    }


# ------------------------------------------------------------------------------------------------ running
def _one(column: Column, bench: Benchmark, n: int) -> Sample:
    async def timed() -> Sample:
        async with asyncio.timeout(SAMPLE_TIMEOUT):
            return await bench.func(n)
    gc.collect()
    # The asyncio.timeout above needs working timers; a loop wedged harder than that must still not hang
    # the run forever: dump every thread's stack and exit.
    faulthandler.dump_traceback_later(SAMPLE_TIMEOUT * 2, exit=True)
    try:
        sample = column.runner(timed)
    finally:
        faulthandler.cancel_dump_traceback_later()
    if not isinstance(sample, Sample) or sample.ops <= 0:
        raise RuntimeError(f"benchmark returned {sample!r}, not a Sample with ops > 0")
    return sample


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _sizes(bench: Benchmark, warm: dict[str, Sample], scale: float, n_warm: int) -> dict[str, int]:
    """Timed size per column. Every column does the same work as stock asyncio (``n`` calibrated so that the
    baseline sample takes the target time), except a column so slow that this would take over 3x the target
    (trio-asyncio): it gets a size that fits the target, so one slow reference cannot blow the time budget."""
    target = TARGET_SECONDS[bench.group] * scale
    base = warm.get(BASELINE)
    n = max(n_warm, int(base.rate * target)) if base is not None else n_warm
    sizes = {}
    for name, s in warm.items():
        sizes[name] = n if s.rate * target * 3 >= n else max(n_warm, int(s.rate * target))
    return sizes


def run_suite(benchmarks: Sequence[Benchmark], columns: Sequence[Column], *, repeat: int = 5,
              scale: float = 1.0, missing: dict[str, str] | None = None, clock: str | None = None,
              progress: Callable[[str], None] | None = None) -> SuiteResult:
    """Run every benchmark on every column, ``repeat`` interleaved rounds each. ``clock`` ("wall"/"cpu")
    overrides every benchmark's own choice."""
    t_start = time.perf_counter()
    names = [c.name for c in columns]
    if not names or names[0] != BASELINE:
        raise ValueError(f"the first column must be the baseline {BASELINE!r}")
    # Beyond three loops next to the baseline, shorten the samples so a full run stays around a minute.
    scale *= min(1.0, 3 / max(1, len(columns) - 1))
    results: dict[tuple[str, str], Result] = {}
    for bench in benchmarks:
        n_warm = max(1, int(bench.n * min(scale, 1.0)))
        bclock = clock or bench.clock
        cells = {c.name: Result(bench.name, c.name, n_warm, bench.unit, bclock) for c in columns}
        for c in columns:
            results[(bench.name, c.name)] = cells[c.name]
        # Warm-up (untimed): imports, code objects, allocator pools; calibrates the timed size and finds
        # the cells that skip or fail.
        warm: dict[str, Sample] = {}
        for c in columns:
            try:
                warm[c.name] = _one(c, bench, n_warm)
            except Skip as exc:
                cells[c.name].skipped = str(exc)
            except Exception as exc:  # noqa: BLE001 - one broken loop must not stop the others
                cells[c.name].error = _describe(exc)
        base = warm.get(BASELINE)
        target = TARGET_SECONDS[bench.group] * scale
        tries = 0
        while base is not None and (tries == 0 or base.wall < target / 3) and tries < 3:
            # The warm-up was a cold first run, and maybe too short to extrapolate from (fixed set-up
            # costs): measure the baseline again at about half the target size.
            tries += 1
            try:
                base = warm[BASELINE] = _one(columns[0], bench, max(n_warm, int(base.rate * target / 2)))
            except Exception as exc:  # noqa: BLE001
                cells[BASELINE].error = _describe(exc)
                del warm[BASELINE]
                base = None
        sizes = _sizes(bench, warm, scale, n_warm)
        for name, size in sizes.items():
            cells[name].n = size
        live = [c for c in columns if c.name in warm]
        for r in range(repeat):
            k = r % len(live) if live else 0
            order = live[k:] + live[:k]
            round_samples: dict[str, Sample] = {}
            for c in order:
                cell = cells[c.name]
                if cell.error is not None:
                    continue
                try:
                    s = _one(c, bench, cell.n)
                except Exception as exc:  # noqa: BLE001
                    cell.error = _describe(exc)
                    continue
                cell.samples.append(s)
                round_samples[c.name] = s
            base = round_samples.get(BASELINE)
            if base is not None:
                for name, s in round_samples.items():
                    if name == BASELINE:
                        continue
                    cells[name].ratios.append(s.metric(bclock) / base.metric(bclock))
                    for ratios, ratio in ((cells[name].cpu_ratios, user_cpu_ratio(s, base)),
                                          (cells[name].thread_cpu_ratios, thread_cpu_ratio(s, base))):
                        if ratio is not None:
                            ratios.append(ratio)
        if progress is not None:
            progress(_progress_line(bench, columns, cells))
    return SuiteResult(columns=names, missing=dict(missing or {}), benchmarks=list(benchmarks), results=results,
                       repeat=repeat, elapsed=time.perf_counter() - t_start)


def _progress_line(bench: Benchmark, columns: Sequence[Column], cells: dict[str, Result]) -> str:
    parts = []
    for c in columns:
        cell = cells[c.name]
        if cell.skipped is not None:
            parts.append(f"{c.name}=skip")
        elif cell.error is not None:
            parts.append(f"{c.name}=ERROR")
        elif c.name == BASELINE:
            parts.append(f"{c.name}={fmt_rate(statistics.median(s.metric(cell.clock) for s in cell.samples))}")
        elif cell.ratios:
            parts.append(f"{c.name}={statistics.median(cell.ratios):.2f}x")
    return f"{bench.name:<22} " + "  ".join(parts)


# ------------------------------------------------------------------------------------------------ output
def fmt_rate(rate: float, bytes_per_op: int = 0) -> str:
    if bytes_per_op:
        return f"{rate * bytes_per_op / 1e6:.3g} MB/s"
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if rate >= div:
            return f"{rate / div:.3g}{suffix}/s"
    return f"{rate:.3g}/s"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Plain-text columns: the first ``left`` columns (names) left-aligned, the rest (numbers) right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(cell.ljust(w) if i < left else cell.rjust(w)  # noqa: E731
                               for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x [{min(values):.2f}-{max(values):.2f}]"


def format_tables(suite: SuiteResult) -> str:
    """Two tables: ratios vs asyncio (>1 = better; for I/O benchmarks also the server's user CPU per request),
    and absolute rates (with the server loop thread's user CPU per operation next to I/O rates)."""
    cols = suite.columns
    notes: dict[str, int] = {}

    def note(text: str) -> str:
        if text not in notes:
            notes[text] = len(notes) + 1
        return f"[{notes[text]}]"

    def blocked(cell: Result) -> str | None:
        if cell.skipped is not None:
            return "skip" + note(f"skipped: {cell.skipped}")
        if cell.error is not None:
            return "ERROR" + note(f"error: {cell.error}")
        return None

    ratio_rows, rate_rows, peer_rows = [], [], []
    for b in suite.benchmarks:
        clock = suite.results[(b.name, cols[0])].clock
        rr, ar, pr = [b.name, clock], [b.name, clock], [b.name]
        cr, tr = [f"{b.name} (user CPU/op)", "cpu"], [f"{b.name} (thread CPU/op)", "cpu"]
        for c in cols:
            cell = suite.results[(b.name, c)]
            bad = blocked(cell)
            if bad is not None:
                for row in (rr, ar, cr, tr, pr):
                    row.append(bad)
                continue
            rate = fmt_rate(statistics.median(s.metric(cell.clock) for s in cell.samples), b.bytes_per_op)
            user_us = statistics.median(s.loop_user_per_op for s in cell.samples) * 1e6
            cpu_us = statistics.median(s.loop_cpu_per_op for s in cell.samples) * 1e6
            ar.append(f"{rate} {user_us:.1f}/{cpu_us:.1f}us" if b.report_cpu else rate)
            figures = cell.peer_figures()
            if figures is not None:
                busy, waits, sleeps = figures
                pr.append(f"{busy:.0%} {waits:.2f}/{sleeps:.2f}{' *' if busy >= PEER_BOUND else ''}")
            else:
                pr.append("n/a")
            if c == BASELINE:
                rr.append(rate)
                cr.append(f"{user_us:.1f}us")
                tr.append(f"{cpu_us:.1f}us")
            else:
                rr.append(_spread(cell.ratios) if cell.ratios else "n/a")
                cr.append(_spread(cell.cpu_ratios) if cell.cpu_ratios else "n/a")
                tr.append(_spread(cell.thread_cpu_ratios) if cell.thread_cpu_ratios else "n/a")
        ratio_rows.append(rr)
        if b.report_cpu:
            ratio_rows += [cr, tr]
        rate_rows.append(ar)
        if any(suite.results[(b.name, c)].has_peer for c in cols):
            peer_rows.append(pr)
    out = [f"Ratio vs stock asyncio: median over {suite.repeat} interleaved rounds [lowest-highest round]; "
           f">1 = better. The {BASELINE} column shows its own rate.",
           "clock: 'cpu' = operations per second of loop-thread CPU time, 'wall' = per elapsed second; "
           "'user CPU/op' rows: the server loop thread's user CPU per operation, asyncio's over this loop's "
           "(the kernel splits user from sys by sampling ticks: read it over many rounds); 'thread CPU/op': "
           "the same for user+sys, exact (it includes the syscalls the loop makes).",
           table(["benchmark", "clock", *cols], ratio_rows), "",
           "Rates (median per second; I/O: and the server loop thread's user / user+sys CPU per operation)",
           table(["benchmark", "clock", *cols], rate_rows)]
    if peer_rows:
        out += ["", f"Load generator (a separate process): its CPU time as a share of the wall time, its waits per "
                f"request / the server loop's sleeps per request; * = client busy {PEER_BOUND:.0%} or more, so the "
                "wall-clock rate is mostly the client's. A server that answers sooner sleeps more often, and the "
                "client's next request must wake it: the client pays for that wake-up, and its rate drops.",
                table(["benchmark", *cols], peer_rows)]
    if suite.missing:
        out += ["", "Not measured: " + "; ".join(f"{k} ({v})" for k, v in suite.missing.items())]
    if notes:
        out += [""] + [f"[{i}] {text}" for text, i in notes.items()]
    meta = machine_info()
    out.append(f"\n{len(suite.benchmarks)} benchmarks x {len(cols)} loops in {suite.elapsed:.1f} s; "
               f"Python {meta['python']}{' (free-threaded)' if meta['free_threaded'] else ''}, multiloop hot "
               f"path: {meta['hot_path']}; {meta['cpus']} x {meta['cpu']}")
    return "\n".join(out)
