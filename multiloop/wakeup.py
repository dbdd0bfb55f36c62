"""Waking a loop that is blocked in its backend, from another thread (``call_soon_threadsafe``).

An eventfd (Linux) or a non-blocking self-pipe is registered as an ordinary reader. Unlike stock asyncio,
which writes a byte on every ``call_soon_threadsafe``, the core only calls :meth:`Waker.wake` while the loop
may be blocked, and the waker writes once until the loop has drained it: a burst of cross-thread calls
costs one syscall, and calls made while the loop is busy running callbacks cost none.

A backend that cannot block on an fd (the trio bridge) supplies its own wake callable instead.

Threads (free-threaded builds make every race here real):
- ``wake`` runs in any thread, ``_drain`` and ``close`` in the loop's. The pending flag is a hint: two threads
  that both see it clear both write (harmless; the eventfd counts, the pipe holds the bytes). It is cleared
  only after the drain, so a wake that finds it set always has a readable fd behind it.
- ``close`` racing a ``wake``: the fd number, once closed, may be reused at once by any ``open()`` in the
  process, and a late write would go into someone else's file. A lock makes "read the fd number and write"
  and "invalidate and close" exclusive. It is only taken when the loop may be blocked (coalesced wakes), so
  it costs nothing on the busy path.

Compiled (``wakeup.pxd``), the write and the drain are C syscalls that keep the GIL: ``os.eventfd_write``
releases it, and a thread that releases the GIL while others post callbacks queues behind them to get it back
(4 threads posting 200,000 calls on 3.11, the two writes A/B in one process: 365 -> 309 ms, uvloop 373). With
the GIL held there is also no need for the lock: ``close`` invalidates the fd number before it closes the fd,
and it cannot run while a C ``wake`` holds the GIL, so a ``wake`` that read a valid number writes before the
close. Free-threaded builds take the lock as the Python code does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

try:
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # running as plain Python without Cython installed
    from . import _cython_shim as cython  # type: ignore[no-redef, unused-ignore]

if TYPE_CHECKING:
    from .seams import FdRegistry


class Waker:
    __slots__ = ("_rfd", "_wfd", "_eventfd", "_pending", "_custom", "_lock")

    def __init__(self, fdtable: FdRegistry, custom: Callable[[], None] | None) -> None:
        self._pending = False
        self._custom = custom
        self._lock = threading.Lock()
        self._rfd = self._wfd = -1
        self._eventfd = False
        if custom is not None:
            return
        if hasattr(os, "eventfd"):
            self._rfd = self._wfd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self._eventfd = True
        else:
            self._rfd, self._wfd = os.pipe()
            os.set_blocking(self._rfd, False)
            os.set_blocking(self._wfd, False)
        fdtable.add_reader(self._rfd, self._drain)

    @property
    def fd_count(self) -> int:
        """How many fds the waker keeps registered in the loop (0 or 1)."""
        return 1 if self._rfd >= 0 else 0

    @property
    def fd(self) -> int:
        """The fd the loop watches, or -1 when the backend wakes itself."""
        return self._rfd

    def wake(self) -> None:
        if self._custom is not None:
            # The backend coalesces its own wake requests. A flag here, cleared by the waking thread after the
            # call, would lose a wake: another thread's callback queued after the backend already woke and
            # went back to waiting, while this thread had not yet cleared the flag, would be skipped.
            self._custom()
            return
        if self._pending:
            return
        self._pending = True
        if cython.compiled and ML_WAKE_HAS_GIL:  # type: ignore[name-defined]  # noqa: F821
            if self._wfd >= 0:  # see the module docstring: no lock needed while the GIL is held
                ml_wake_write(self._wfd, self._eventfd)  # type: ignore[name-defined]  # noqa: F821
            return
        with self._lock:
            wfd = self._wfd
            if wfd < 0:
                return  # closed: nobody to wake
            try:
                if self._eventfd:
                    os.eventfd_write(wfd, 1)
                else:
                    os.write(wfd, b"\0")
            except (BlockingIOError, InterruptedError):
                pass  # already readable: the loop will wake

    def _drain(self) -> None:
        if cython.compiled:
            ml_wake_drain(self._rfd, self._eventfd)  # type: ignore[name-defined]  # noqa: F821
            self._pending = False
            return
        try:
            if self._eventfd:
                os.eventfd_read(self._rfd)
            else:
                while os.read(self._rfd, 4096):
                    pass
        except (BlockingIOError, InterruptedError):
            pass
        # Only now: a wake() between the read and here was a no-op, but its callback is already queued and
        # the next pass sees it before deciding to block.
        self._pending = False

    def after_fork_in_child(self) -> None:
        """A thread of the parent may have held the lock at fork(); in the child nobody will release it."""
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            fds = {self._rfd, self._wfd}
            self._rfd = self._wfd = -1
            for fd in fds:
                if fd >= 0:
                    os.close(fd)
