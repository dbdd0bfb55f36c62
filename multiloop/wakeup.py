"""Waking a loop that is blocked in its backend, from another thread (``call_soon_threadsafe``).

An eventfd (Linux) or a non-blocking self-pipe is registered as an ordinary reader. Unlike stock asyncio,
which writes a byte on every ``call_soon_threadsafe``, the core only calls :meth:`Waker.wake` while the loop
may be blocked, and the waker writes once until the loop has drained it: a burst of cross-thread calls
costs one syscall, and calls made while the loop is busy running callbacks cost none.

A backend that cannot block on an fd (the trio bridge) supplies its own wake callable instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .seams import FdRegistry


class Waker:
    __slots__ = ("_rfd", "_wfd", "_eventfd", "_pending", "_custom")

    def __init__(self, fdtable: FdRegistry, custom: Callable[[], None] | None) -> None:
        self._pending = False
        self._custom = custom
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
        if self._pending:
            return
        self._pending = True
        if self._custom is not None:
            self._custom()
            self._pending = False
            return
        try:
            if self._eventfd:
                os.eventfd_write(self._wfd, 1)
            else:
                os.write(self._wfd, b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # already readable: the loop will wake
        except OSError:
            self._pending = False  # closed under us (loop closed from another thread)

    def _drain(self) -> None:
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

    def close(self) -> None:
        for fd in {self._rfd, self._wfd}:
            if fd >= 0:
                os.close(fd)
        self._rfd = self._wfd = -1
