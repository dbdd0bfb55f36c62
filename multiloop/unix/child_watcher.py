"""Noticing that a child process exited, without zombies and without stealing other code's children.

Facts that shape this module:

- ``os.pidfd_open(pid)`` (Linux 5.3+, Python 3.9+) gives an fd that becomes readable when the process exits:
  the loop watches it like a socket, so no thread, no SIGCHLD handler, nothing process-wide. It can be
  missing (old kernel, other Unix) or forbidden (seccomp, some containers): probe it for real.
- Between ``fork()`` and the parent's ``waitpid()`` the child is at worst a zombie, so its pid cannot be
  reused: opening the pidfd right after ``Popen`` returns is race-free as long as nobody else reaps it.
- Who reaps matters. ``subprocess.Popen`` reaps in ``poll()``/``wait()`` (under its own lock, so a
  ``wait()`` in a thread and a ``poll()`` elsewhere are safe together), and if anything else reaped the
  child first, Popen reports returncode 0, which is a lie. So the only reaper of a child is its Popen object:
  when the pidfd is readable we call ``proc.poll()``; the fallback thread calls ``proc.wait()``. A user
  calling ``proc.wait()`` on ``get_extra_info('subprocess')`` (CPython's tests do) then stays correct, and
  ``Popen.send_signal`` cannot signal a recycled pid (it polls first).
- Fallback where pidfds are unavailable: one daemon thread per running child blocked in ``proc.wait()``,
  which hands the exit status to the loop with ``call_soon_threadsafe``. The thread blocks all signals:
  otherwise the kernel may pick it for a Ctrl-C, and the main thread's poll would not be interrupted. Threads cost memory, not CPU, and
  need no process-wide state (a SIGCHLD handler would fight with other libraries over ``waitpid(-1)``).
- If the loop is closed while a child still runs, its pidfd is closed and a thread takes over reaping, so
  the child does not become a zombie and no fd outlives the loop. In a process forked from the loop's, the
  child is not ours to reap: closing the inherited loop only closes our copy of the pidfd.

Choosing: ``MULTILOOP_CHILD_WATCHER`` = ``pidfd`` | ``thread`` | ``auto`` (default) forces the kind, which
is how tests exercise the fallback on a kernel that has pidfds. :func:`child_watcher_kind` says which kind
new subprocesses get.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..seams import Loop

ENV_VAR = "MULTILOOP_CHILD_WATCHER"
KINDS = ("pidfd", "thread")

_pidfd_probe: bool | None = None


def pidfd_available() -> bool:
    """Whether ``os.pidfd_open`` really works here (checked once, on our own pid)."""
    global _pidfd_probe
    if _pidfd_probe is None:
        try:
            os.close(os.pidfd_open(os.getpid()))
        except (AttributeError, OSError):
            _pidfd_probe = False
        else:
            _pidfd_probe = True
    return _pidfd_probe


def child_watcher_kind() -> str:
    """``"pidfd"`` or ``"thread"``: how a subprocess started now will be watched.

    ``MULTILOOP_CHILD_WATCHER=thread`` forces the fallback; ``=pidfd`` insists on pidfds and fails (with
    the reason) where they do not work; unset or ``auto`` picks pidfd when available.
    """
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in ("", "auto"):
        return "pidfd" if pidfd_available() else "thread"
    if forced == "thread":
        return "thread"
    if forced == "pidfd":
        if not pidfd_available():
            raise RuntimeError(f"{ENV_VAR}=pidfd, but os.pidfd_open() does not work here (needs Linux 5.3+ and "
                               f"no seccomp filter forbidding it); unset it to fall back to a thread per child")
        return "pidfd"
    raise ValueError(f"{ENV_VAR}={forced!r}: expected one of 'pidfd', 'thread', 'auto'")


def reap_in_thread(proc: subprocess.Popen[Any], done: Callable[[int], None] | None) -> None:
    def wait() -> None:
        # Block every signal here, so the kernel delivers process-directed signals (Ctrl-C) to a thread
        # that handles them: one hitting this thread would not interrupt the loop's wait in the main thread.
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        returncode = proc.wait()
        if done is not None:
            done(returncode)

    threading.Thread(target=wait, name=f"multiloop-waitpid-{proc.pid}", daemon=True).start()


class ChildWatch:
    """Watches one child for one loop and calls ``on_exit(returncode)`` on that loop, once; then
    ``forget(self)`` (the loop's set of watches)."""

    __slots__ = ("_loop", "_proc", "_on_exit", "_forget", "_pidfd", "_pid", "kind", "__weakref__")

    def __init__(self, loop: Loop, proc: subprocess.Popen[Any], on_exit: Callable[[int], None],
                 kind: str | None = None, *, forget: Callable[[ChildWatch], None] | None = None) -> None:
        self._loop: Loop | None = loop
        self._proc = proc
        self._on_exit: Callable[[int], None] | None = on_exit
        self._forget = forget
        self._pidfd = -1
        self._pid = os.getpid()  # the process whose child this is (a fork of it must not reap it)
        self.kind = kind or child_watcher_kind()
        if self.kind == "pidfd":
            try:
                self._pidfd = os.pidfd_open(proc.pid)
            except OSError:
                self.kind = "thread"  # EMFILE and the like: this child gets a thread instead
            else:
                try:
                    loop._fdtable.add_reader(self._pidfd, self._pidfd_ready)
                except BaseException:
                    os.close(self._pidfd)
                    raise
        if self.kind == "thread":
            reap_in_thread(proc, self._from_thread)

    def __repr__(self) -> str:
        return f"<ChildWatch pid={self._proc.pid} kind={self.kind}>"

    def _pidfd_ready(self) -> None:
        self._close_pidfd()
        returncode = self._proc.poll()
        if returncode is None:
            # Readable means exited, so only a wait() in another thread holding Popen's lock gets here:
            # let a thread of ours wait behind it.
            self.kind = "thread"
            reap_in_thread(self._proc, self._from_thread)
            return
        self._finish(returncode)

    def _from_thread(self, returncode: int) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._finish, returncode)
        except RuntimeError:
            pass  # the loop was closed (or we are a forked child); the child is reaped all the same

    def _finish(self, returncode: int) -> None:
        on_exit = self._on_exit
        if on_exit is None:
            return
        self._on_exit = None
        if self._forget is not None:
            self._forget(self)
        self._loop = None
        on_exit(returncode)

    def _close_pidfd(self) -> None:
        if self._pidfd >= 0:
            if self._loop is not None:
                self._loop._fdtable.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    def detach(self) -> None:
        """The loop is closing: stop reporting, but make sure the child is still reaped (no zombie) - unless
        this is a forked copy of the loop's process, where only our copy of the pidfd is closed."""
        self._on_exit = None
        if self._pidfd >= 0:
            self._close_pidfd()
            if self._pid == os.getpid() and self._proc.poll() is None:
                reap_in_thread(self._proc, None)
        self._loop = None
