"""Hostile API input, property-based (hypothesis): random sequences of ``add_reader``/``add_writer``/
``remove_reader``/``remove_writer`` on valid, closed, dup'd and reused fds, huge and negative numbers and
objects that are no fds, from this thread and others, on running, idle and closed loops. The loop raises
clear errors, never crashes, never spins, never leaks.

Facts that shape it:
- What user code can do to the fd API is unbounded; a generator of operation sequences (hypothesis, which
  also shrinks a failing sequence to a minimal one) finds the combinations nobody thinks of: a socket closed
  while registered and its number reused, a dup registered and then the original closed, an fd registered
  on a loop that was closed in between.
- Each example gets a fresh loop, run for a few passes after its operations: a registration left for a
  closed fd must not make the loop spin (passes per second stay low) or raise out of it; a report through
  the exception handler is the loop's way to say so.
- Errors allowed, with what they must say: bad fds and objects raise ValueError/TypeError/OSError (multiloop's
  ``InvalidFdError``/``BadFdError``: the message names the backend); a closed loop raises RuntimeError
  ("closed"); nothing else escapes.
- Calls from other threads: the fd API is not thread-safe in asyncio (stock checks only in debug mode), so
  other threads call it on a loop that is not running; ``call_soon_threadsafe`` is the API for a running
  loop and is hammered by several threads at once, every callback counted.

Promises checked: every error is an allowed one naming the backend, no exception leaves ``run_until_complete``,
passes per second stay below the spin limit, no fd leaks, and every ``call_soon_threadsafe`` callback runs
exactly once. Figures: examples, operations, errors by type, reports, thread callbacks.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections import Counter
from typing import Any

import multiloop

from .harness import IDLE_PASSES_PER_SECOND_LIMIT, Context, Skip, open_fds

SIZES = {
    "ci": {"examples": 60, "max_ops": 25, "threads": 8, "thread_calls": 2000, "timeout": 120},
    "soak": {"examples": 1000, "max_ops": 60, "threads": 8, "thread_calls": 100000, "timeout": 1800},
}

_SLOTS = 3
_ALLOWED = (ValueError, TypeError, OSError, RuntimeError)


class _BadFileno:
    def fileno(self) -> int:
        raise OSError("fileno() fails")


class _StrFileno:
    def fileno(self) -> Any:
        return "7"


class _NegFileno:
    def fileno(self) -> int:
        return -5


_JUNK = [2**31 - 1, 2**31, 2**63, 10**30, 1 << 20, -1, -(2**31), -(10**30), "3", 3.0, None, b"", True,
         _BadFileno(), _StrFileno(), _NegFileno(), object()]


class _Env:
    """A loop and a few socket pairs in slots, and the hostile operations on them."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.loop = multiloop.new_loop(backend)
        self.slots: list[tuple[socket.socket, socket.socket] | None] = [None] * _SLOTS
        self.closed: list[socket.socket] = []  # sockets closed while (maybe) registered
        self.dups: list[int] = []
        # Junk that names an open fd all the same (True is fd 1; a fileno() of "7" is fd 7, as in stock's
        # selectors) and was registered: some other file of this process, maybe always writable.
        self.junk_added: list[Any] = []
        self.calls = 0
        self.errors: Counter[str] = Counter()
        self.violations: list[str] = []
        self.reports: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda lp, context: self.reports.append(context))
        for i in range(_SLOTS):
            self.open(i)

    def open(self, i: int) -> None:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        old, self.slots[i] = self.slots[i], (a, b)
        if old is not None:  # closed behind the loop's back, maybe while registered
            old[0].close()
            old[1].close()
            self.closed.append(old[0])

    def target(self, kind: str, i: int, junk: int) -> Any:
        pair = self.slots[i]
        if kind == "socket" and pair is not None:
            return pair[0]
        if kind == "fd" and pair is not None:
            return pair[0].fileno()
        if kind == "closed" and self.closed:
            return self.closed[i % len(self.closed)]
        if kind == "dup" and self.dups:
            return self.dups[i % len(self.dups)]
        return _JUNK[junk % len(_JUNK)]

    def call(self, method: str, target: Any) -> None:
        self.calls += 1
        callback = self._callback
        try:
            if method.startswith("add"):
                getattr(self.loop, method)(target, callback)
                if any(target is junk for junk in _JUNK):
                    self.junk_added.append(target)
            else:
                getattr(self.loop, method)(target)
        except _ALLOWED as exc:
            self.errors[type(exc).__name__] += 1
            message = str(exc)
            if isinstance(exc, RuntimeError):
                ok = "closed" in message or "is used by transport" in message
            else:
                ok = self.backend in message
            if not ok:
                self.violations.append(f"{method}({target!r}) raised an unclear {type(exc).__name__}: {exc}")
        except BaseException as exc:  # anything else escaping the fd API is a crash
            self.violations.append(f"{method}({target!r}) raised {type(exc).__name__}: {exc}")

    @staticmethod
    def _callback() -> None:
        pass

    def apply(self, op: tuple[Any, ...]) -> None:
        name = op[0]
        if name in ("add_reader", "add_writer", "remove_reader", "remove_writer"):
            _, kind, i, junk, other_thread = op
            target = self.target(kind, i, junk)
            if other_thread and not self.loop.is_running():
                t = threading.Thread(target=self.call, args=(name, target))
                t.start()
                t.join()
            else:
                self.call(name, target)
        elif name == "close":  # closed behind the loop's back, maybe while registered
            pair = self.slots[op[1]]
            if pair is not None:
                pair[0].close()
                pair[1].close()
                self.closed.append(pair[0])
                self.slots[op[1]] = None
        elif name == "reopen":  # a new socket that may get a closed one's number
            self.open(op[1])
        elif name == "dup":
            pair = self.slots[op[1]]
            if pair is not None:
                self.dups.append(os.dup(pair[0].fileno()))
        elif name == "close_dup" and self.dups:
            os.close(self.dups.pop(op[1] % len(self.dups)))
        elif name == "readable":
            pair = self.slots[op[1]]
            if pair is not None:
                try:
                    pair[1].send(b"x")
                except OSError:
                    pass
        elif name == "run":
            self.run(0.005, spin_check=False)  # live sockets may be ready: their callbacks run every pass
        elif name == "close_loop" and not self.loop.is_closed():
            self.loop.close()

    def forget_live(self) -> None:
        """Remove what is registered for the open sockets and dups: a writable socket's writer (or a readable
        one's reader) runs on every pass by design, as does one registered through junk that names another
        open fd of this process. What stays is registered for closed fds only."""
        if self.loop.is_closed():
            return
        live: list[Any] = [pair[0] for pair in self.slots if pair is not None] + self.dups
        for target in live:
            self.loop.remove_reader(target)
            self.loop.remove_writer(target)
        for target in self.junk_added:  # its fd may since have been closed: then removing is an error
            for remove in (self.loop.remove_reader, self.loop.remove_writer):
                try:
                    remove(target)
                except _ALLOWED:
                    pass

    def run(self, seconds: float, *, spin_check: bool = True) -> None:
        """Run the loop for ``seconds``; it must not raise, and (``spin_check``) not spin: after a first
        half in which the loop may find and drop registrations of dead fds (a few passes), the second half
        is one sleep, one or two passes; a spin makes thousands."""
        loop = self.loop
        if loop.is_closed():
            return
        try:
            loop.run_until_complete(asyncio.sleep(seconds / 2))
            before = loop.stats().iterations
            start = time.monotonic()
            loop.run_until_complete(asyncio.sleep(seconds / 2))
        except BaseException as exc:
            self.violations.append(f"run_until_complete raised {type(exc).__name__}: {exc}")
            return
        rate = (loop.stats().iterations - before) / (time.monotonic() - start)
        limit = IDLE_PASSES_PER_SECOND_LIMIT + 4 / (seconds / 2)
        if spin_check and rate > limit:
            self.violations.append(f"the loop spins: {rate:.0f} passes/s after these operations")

    def close(self) -> None:
        loop = self.loop
        if not loop.is_closed():
            loop.close()
        for pair in self.slots:
            if pair is not None:
                pair[0].close()
                pair[1].close()
        for fd in self.dups:
            os.close(fd)


def _strategy() -> Any:
    from hypothesis import strategies as st

    slot = st.integers(0, _SLOTS - 1)
    fd_op = st.tuples(st.sampled_from(["add_reader", "add_writer", "remove_reader", "remove_writer"]),
                      st.sampled_from(["socket", "fd", "closed", "dup", "junk"]), slot,
                      st.integers(0, len(_JUNK) - 1), st.booleans())
    other = st.tuples(st.sampled_from(["close", "reopen", "dup", "close_dup", "readable", "run", "close_loop"]),
                      slot)
    return st.one_of(fd_op, fd_op, other)


#: Sequences that are always tried first: the known ways to leave a registration for a dead fd.
KNOWN_CASES = [
    # A socket closed while its reader is registered (poll: POLLNVAL forever; select: EBADF).
    [("add_reader", "socket", 0, 0, False), ("readable", 0), ("close", 0)],
    [("add_writer", "fd", 0, 0, False), ("close", 0)],
    # ... and its number reused by a new socket before anyone removes it.
    [("add_reader", "socket", 0, 0, False), ("close", 0), ("reopen", 0), ("readable", 0), ("run", 0)],
    # epoll: a registration whose fd was closed while a dup() keeps the file open cannot be deleted by
    # number any more; the file stays readable (the peer is closed: EOF).
    [("add_reader", "socket", 0, 0, False), ("dup", 0), ("close", 0), ("remove_reader", "closed", 0, 0, False)],
    # A dup registered, the original closed, the dup closed too.
    [("dup", 0), ("add_reader", "dup", 0, 0, False), ("close", 0), ("close_dup", 0)],
    # Registrations on a loop that is closed in between, from another thread too.
    [("add_reader", "socket", 1, 0, True), ("close_loop",), ("remove_reader", "socket", 1, 0, True),
     ("add_writer", "fd", 1, 0, False)],
]


def _hypothesis_run(ctx: Context, figures: dict[str, Any], problems: list[str]) -> None:
    try:
        from hypothesis import HealthCheck, example, given, seed, settings
    except ImportError:
        raise Skip("hypothesis is not installed (pip install hypothesis)") from None
    from hypothesis import strategies as st

    p = ctx.params
    errors: Counter[str] = Counter()
    counts: Counter[str] = Counter()

    @seed(ctx.result.seed)
    @settings(max_examples=p["examples"], deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(_strategy(), max_size=p["max_ops"]))
    def run_example(ops: list[tuple[Any, ...]]) -> None:
        before = open_fds()
        env = _Env(ctx.backend)
        try:
            for op in ops:
                env.apply(op)
            env.forget_live()
            env.run(0.04)
        finally:
            env.close()
        leaked = {fd: t for fd, t in open_fds().items() if fd not in before}
        counts["examples"] += 1
        counts["operations"] += len(ops)
        counts["api_calls"] += env.calls
        counts["reports"] += len(env.reports)
        errors.update(env.errors)
        unclear = [r for r in env.reports if ctx.backend not in str(r.get("message", ""))
                   + str(r.get("exception", ""))]
        problems_here = list(env.violations)
        if leaked:
            problems_here.append(f"fds leaked: {leaked}")
        if unclear:
            problems_here.append(f"exception-handler report that does not name the backend: {unclear[0]}")
        if problems_here:
            raise AssertionError("; ".join(problems_here[:3]) + f" (operations: {ops})")

    for case in KNOWN_CASES:
        run_example = example(case)(run_example)
    try:
        run_example()
    except AssertionError as exc:
        problems.append(str(exc)[:2000])
    figures.update(counts)
    figures["errors_raised"] = dict(sorted(errors.items()))


def _threadsafe_hammer(ctx: Context, loop: asyncio.AbstractEventLoop, figures: dict[str, Any]) -> None:
    """Several threads call_soon_threadsafe at once on the running scenario loop; every callback runs once."""
    p = ctx.params
    ran = [0] * p["threads"]
    done = threading.Event()
    total = p["threads"] * p["thread_calls"]
    counter = [0]

    def callback(i: int) -> None:
        ran[i] += 1
        counter[0] += 1
        if counter[0] == total:
            done.set()

    def worker(i: int) -> None:
        for _ in range(p["thread_calls"]):
            loop.call_soon_threadsafe(callback, i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(p["threads"])]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.wait(60)
    figures["threadsafe_callbacks"] = sum(ran)
    figures["threadsafe_calls_per_s"] = round(sum(ran) / (time.monotonic() - start))
    ctx.check(ran == [p["thread_calls"]] * p["threads"],
              f"call_soon_threadsafe callbacks ran {ran} times, expected {p['thread_calls']} each")


async def main(ctx: Context) -> None:
    loop = ctx.loop
    figures: dict[str, Any] = {}
    problems: list[str] = []
    await loop.run_in_executor(None, _hypothesis_run, ctx, figures, problems)
    for problem in problems:
        ctx.check(False, problem)
    await loop.run_in_executor(None, _threadsafe_hammer, ctx, loop, figures)
    for name, value in figures.items():
        ctx.figure(name, value)
