"""What a behavioural check runs with: a backend's loops and pollers, sockets, and failures that explain.

Facts that shape the harness:

- A broken backend breaks the tools used to test it. ``asyncio.wait_for`` is a timer: on a backend that
  ignores timeouts it never fires, and the check hangs instead of failing. So :meth:`Harness.run` bounds a
  coroutine with a *thread* that cancels it through ``call_soon_threadsafe`` (the wake-up path, which such a
  backend usually still honours), and the runner (:mod:`multiloop.kit.behaviour`) adds a SIGALRM per check
  for backends that honour nothing, and a fresh process per batch for backends that crash.
- "Does not spin" cannot be asserted with a clock on a shared machine, but it can be counted: during an idle
  wait of a fifth of a second a loop that blocks makes a handful of passes, a spinning one thousands.
  :meth:`Harness.passes_during_idle_wait` returns that count; checks compare it with a bound two orders of
  magnitude below what a spin produces (:data:`MAX_IDLE_PASSES`).
- Checks must not depend on pytest (the kit runs from an installed copy without test dependencies), and
  ``assert`` statements vanish under ``python -O``: failures are :class:`CheckFailure` raised by
  :meth:`Harness.expect`/:meth:`Harness.fail`, with a message that names the problem and its likely cause.

Design: a check is a plain function taking a :class:`Harness`, registered with :func:`check`. The harness
owns everything the check creates and releases it in :meth:`Harness.close`, then verifies that no file
descriptor outlived the check (a backend that leaks its kernel object fails every check that closes a loop).
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import signal
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import multiloop
from multiloop.backend import Backend, Poller
from multiloop.registry import get_registry

__all__ = ["CheckFailure", "SkipCheck", "Check", "CHECKS", "check", "Harness", "Outcome", "run_check",
           "MAX_IDLE_PASSES"]

#: Loop passes allowed while a loop waits 0.2 s for a timer with nothing ready. A blocking backend makes
#: 1-3 (a few more if something wakes it); a spinning one makes tens of thousands. The bound leaves room
#: for the core's own last-resort defence (it samples reported fds every 256th pass, see
#: ``LoopCore._audit``), which ends a busy loop the kernel cannot report within that many passes.
MAX_IDLE_PASSES = 300
#: The idle window, in seconds.
IDLE_WINDOW = 0.2


class CheckFailure(AssertionError):
    """A check found the backend misbehaving; the message says how and what usually causes it."""


@dataclass(frozen=True)
class Check:
    """One behaviour the core relies on. ``level`` is ``poller`` (the Poller used directly, as the contract
    says) or ``loop`` (a multiloop loop on the backend). ``quick``: part of ``check-backend --quick``."""

    name: str
    func: Callable[[Harness], None]
    level: str
    quick: bool
    summary: str

    def __call__(self, harness: Harness) -> None:
        self.func(harness)


#: Every check, by name, in definition order (poller checks first: they localise a problem best).
CHECKS: dict[str, Check] = {}


def check(level: str, *, quick: bool = False) -> Callable[[Callable[[Harness], None]], Callable[[Harness], None]]:
    """Register the decorated function as a check; its name is the check's name, its docstring's first
    line the behaviour it checks."""

    def register(func: Callable[[Harness], None]) -> Callable[[Harness], None]:
        doc = (func.__doc__ or "").strip().splitlines()
        CHECKS[func.__name__] = Check(func.__name__, func, level, quick, doc[0] if doc else func.__name__)
        return func

    return register


def restore_ctrl_c() -> bool:
    """Give this process Python's own SIGINT handler if it started with SIGINT ignored; True if it did.

    A process started as a background job of a non-interactive shell (``cmd &``, ``nohup``) inherits SIGINT
    ignored, through tox and pytest, and Python then installs no handler of its own. Tests of Ctrl-C handling
    (CPython's ``test_runners``, the trio bridge's shutdown tests) raise SIGINT and would wait for a
    ``KeyboardInterrupt`` that never comes, until their timeout. A test process calls this before them."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return True
    return False


def open_fds() -> dict[int, str]:
    """fd -> what it points at (readlink on Linux; the fd's type on macOS/BSD, through fdescfs).

    Shared libraries are left out: the runtime may keep one open for good the first time some code needs it
    (libffi keeps its own ``.so`` open for its closure trampolines, first used by whatever module in the process
    makes a ctypes callback), which is no leak of the code under test."""
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    result = {}
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            try:
                target = str(os.fstat(int(name)).st_mode)
            except OSError:
                continue  # the listing's own fd, gone already
        if not _SHARED_LIBRARY.search(target):
            result[int(name)] = target
    return result


_SHARED_LIBRARY = re.compile(r"\.so(\.[0-9.]+)?$|\.dylib$")


class Harness:
    """Resources for one check on one backend, released by :meth:`close`."""

    def __init__(self, backend: str, *, check_fds: bool = True) -> None:
        self.backend = backend
        self.descriptor: Backend = get_registry().get(backend)
        self.capabilities = self.descriptor.capabilities
        self._cleanups: list[Callable[[], Any]] = []
        self._fds_before = open_fds() if check_fds else None

    # -- failing -------------------------------------------------------------------------------------------
    def fail(self, message: str) -> None:
        raise CheckFailure(message)

    def expect(self, condition: object, message: str) -> None:
        if not condition:
            raise CheckFailure(message)

    # -- resources -----------------------------------------------------------------------------------------
    def defer(self, fn: Callable[[], Any]) -> None:
        """Call ``fn`` at clean-up (last deferred, first called)."""
        self._cleanups.append(fn)

    def new_loop(self) -> multiloop.EventLoop:
        loop = multiloop.new_loop(self.backend)
        self.defer(lambda: _close_loop(loop))
        return loop

    def new_poller(self) -> Poller:
        poller = self.descriptor.factory()
        self.expect(isinstance(poller, Poller), f"the backend's factory returned {type(poller).__name__}, not a "
                                                f"multiloop.Poller")
        self.defer(poller.close)
        return poller

    def socketpair(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self.defer(a.close)
        self.defer(b.close)
        return a, b

    def regular_file(self, data: bytes) -> int:
        """An fd open for reading on a regular file holding ``data``, positioned at its start."""
        fd, path = tempfile.mkstemp(prefix="multiloop-kit-")
        os.unlink(path)
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        self.defer(lambda: _close_quietly(fd))
        return fd

    def capture_errors(self, loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
        """Route ``loop``'s exception handler into the returned list."""
        seen: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: seen.append(context))
        return seen

    # -- running -------------------------------------------------------------------------------------------
    def run(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], *, timeout: float = 10.0,
            what: str = "the check's coroutine") -> Any:
        """Run ``coro`` on ``loop``; fail if it takes longer than ``timeout`` seconds.

        Bounded by a thread, not a timer, so a backend that ignores timeouts fails instead of hanging."""
        task = loop.create_task(coro)
        expired = threading.Event()
        finished = threading.Event()

        def watchdog() -> None:
            if not finished.wait(timeout):
                expired.set()
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:
                    pass  # closed meanwhile

        thread = threading.Thread(target=watchdog, name="multiloop-kit watchdog", daemon=True)
        thread.start()
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            if expired.is_set():
                raise CheckFailure(f"{what} did not finish within {timeout} s on backend {self.backend!r} (the "
                                   f"loop was only woken by call_soon_threadsafe from a watchdog thread)") from None
            raise
        finally:
            finished.set()
            thread.join()

    def passes_during_idle_wait(self, loop: asyncio.AbstractEventLoop, seconds: float = IDLE_WINDOW) -> int:
        """Loop passes while ``loop`` sleeps ``seconds`` (nothing else to do but what is registered)."""
        before = loop.stats().iterations  # type: ignore[attr-defined]
        self.run(loop, asyncio.sleep(seconds), timeout=seconds + 10, what=f"asyncio.sleep({seconds})")
        return int(loop.stats().iterations - before)  # type: ignore[attr-defined]

    def expect_no_spin(self, loop: asyncio.AbstractEventLoop, situation: str, hint: str = "") -> None:
        passes = self.passes_during_idle_wait(loop)
        self.expect(passes <= MAX_IDLE_PASSES,
                    f"busy loop: {situation}, the loop made {passes} passes while it waited {IDLE_WINDOW} s "
                    f"for a timer (a blocking backend makes a handful){hint}")

    # -- clean-up ------------------------------------------------------------------------------------------
    def close(self) -> None:
        errors = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep releasing; report the first problem
                errors.append(exc)
        if errors:
            raise CheckFailure(f"cleaning up failed: {type(errors[0]).__name__}: {errors[0]}") from errors[0]
        if self._fds_before is not None:
            gc.collect()
            leaked = {fd: what for fd, what in open_fds().items() if fd not in self._fds_before}
            if leaked:
                # Left open: closing an fd some object still owns would close whatever reuses its number
                # when that object is finalised. The next check's snapshot includes them.
                raise CheckFailure(f"file descriptors leaked (still open after every loop and poller of the "
                                   f"check was closed): {leaked}")


def _close_loop(loop: multiloop.EventLoop) -> None:
    if loop.is_closed():
        return
    if not loop.is_running():
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


@dataclass(frozen=True)
class Outcome:
    """How one check went: ``passed``, ``failed`` (the backend misbehaved), ``error`` (the check itself
    crashed: a backend raising where it must not, usually), or ``skipped`` (not applicable here)."""

    name: str
    outcome: str
    message: str
    seconds: float


class SkipCheck(Exception):
    """Raised by a check that does not apply (a capability the backend lacks, a platform limit)."""


def run_check(chk: Check, backend: str, *, check_fds: bool = True) -> Outcome:
    """Run one check in this process and say how it went (never raises for the backend's faults)."""
    t0 = time.monotonic()
    harness = Harness(backend, check_fds=check_fds)
    outcome, message = _attempt(chk, harness)
    closing, why = _attempt(lambda h: h.close(), harness)
    if closing != "passed":
        if outcome in ("passed", "skipped"):
            outcome, message = closing, why
        else:
            message += f"\n(and then: {why})"
    return Outcome(chk.name, outcome, message, round(time.monotonic() - t0, 3))


def _attempt(fn: Callable[[Harness], None], harness: Harness) -> tuple[str, str]:
    try:
        fn(harness)
    except SkipCheck as exc:
        return "skipped", str(exc)
    except CheckFailure as exc:
        return "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - the backend (or the check) crashed: say where
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        return "error", f"{type(exc).__name__}: {exc}\n" + "".join(tb[-6:])
    return "passed", ""
