"""``add_signal_handler`` / ``remove_signal_handler``: Unix signals delivered as ordinary loop callbacks.

Facts that shape this module:

- CPython runs Python-level signal handlers only in the main thread, between bytecodes; a thread blocked in
  epoll_wait() is not guaranteed to be interrupted (the kernel may deliver the signal to any thread). What
  *is* guaranteed: CPython's C-level handler writes the signal number, as one byte, to the fd given to
  ``signal.set_wakeup_fd()``, from whichever thread the signal hit. So the loop owns a non-blocking pipe,
  makes its write end the wakeup fd, watches the read end like any other fd, and turns each byte into a
  call of the registered handler. The Python-level handler installed for the signal does nothing; it only
  makes CPython catch the signal.
- The wakeup fd is process-wide, and only the main thread may set it: ``add_signal_handler`` from another
  thread fails (RuntimeError, as asyncio). When a loop installs its pipe it remembers the previous wakeup
  fd and restores it when its last handler goes (asyncio sets -1 instead, which silently disconnects
  whoever was there before) - unless someone replaced ours in the meantime, whom we then leave in place.
- SIGKILL and SIGSTOP cannot be caught: ``signal.signal`` fails with EINVAL, reported as asyncio does
  (RuntimeError "sig N cannot be caught"). A number that is no signal is a ValueError; a non-int a TypeError.
- After ``fork()`` the child inherits the wakeup fd, i.e. a copy of the *parent's* pipe: the child's
  signals would be read by the parent's loop, and the child's own handlers are no-ops that swallow
  SIGTERM. A fork hook therefore disconnects the wakeup fd and restores default handlers in the child for
  every loop that had handlers (the inherited loop refuses to run there anyway: LoopForkedError).
  Python 3.12+ also resets the wakeup fd in the child; 3.11 does not.
- Handlers use SA_RESTART (``signal.siginterrupt(sig, False)``) so unrelated blocking calls see fewer EINTRs.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import os
import signal
import sys
import warnings
import weakref
from collections.abc import Callable
from typing import Any, TypeVarTuple, Unpack

from ..seams import Loop

logger = logging.getLogger("asyncio")

_Ts = TypeVarTuple("_Ts")

# Loops that currently own handlers, for the fork hook.
_loops_with_handlers: weakref.WeakSet[SignalsMixin] = weakref.WeakSet()
# Write ends of loops' pipes that are the wakeup fd now or are stacked under another loop's.
_installed_wakeup_fds: set[int] = set()


def _noop_handler(signum: int, frame: Any) -> None:
    """Installed as the Python-level handler so CPython catches the signal; the loop does the work."""


def _default_handler(sig: int) -> Any:
    return signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL


def _check_signal(sig: Any) -> None:
    if not isinstance(sig, int) or isinstance(sig, bool):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")


class SignalsMixin(Loop):
    """Signal handlers through ``signal.set_wakeup_fd``; see the module docstring."""

    # Class-level defaults: the pipe is created on first use, so a loop that never handles signals costs no fd.
    _signal_handlers_dict: dict[int, asyncio.Handle] | None = None
    _signal_rfd = -1
    _signal_wfd = -1
    _signal_prev_wakeup_fd = -1
    _signal_prev_is_loop = False
    _signal_wakeup_installed = False

    @property
    def _signal_handlers(self) -> dict[int, asyncio.Handle]:
        """signal number -> Handle (asyncio's attribute name; CPython's tests inspect it)."""
        handlers = self._signal_handlers_dict
        if handlers is None:
            handlers = self._signal_handlers_dict = {}
        return handlers

    # asyncio's names for these helpers, kept for code and tests written against stock asyncio.
    _check_signal = staticmethod(_check_signal)

    def add_signal_handler(self, sig: int, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts) -> None:
        """Call ``callback(*args)`` from the loop whenever signal ``sig`` arrives. Main thread only.

        Raises TypeError (coroutine callback, non-int sig), ValueError (not a signal number), RuntimeError
        (SIGKILL/SIGSTOP, not the main thread, closed loop); LoopForkedError in a forked child.
        """
        if asyncio.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        _check_signal(sig)
        self._check_closed()
        self._install_signal_wakeup()
        handle = asyncio.Handle(callback, args, self, None)
        self._signal_handlers[sig] = handle
        try:
            signal.signal(sig, _noop_handler)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                self._uninstall_signal_wakeup()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        _loops_with_handlers.add(self)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler for ``sig`` and restore the default disposition. True if one was removed."""
        _check_signal(sig)
        handlers = self._signal_handlers
        if sig not in handlers:
            return False
        del handlers[sig]
        try:
            signal.signal(sig, _default_handler(sig))
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        if not handlers:
            self._uninstall_signal_wakeup()
        return True

    # ----------------------------------------------------------------------------------- the wakeup pipe
    def _install_signal_wakeup(self) -> None:
        if self._signal_rfd < 0:
            rfd, wfd = os.pipe()
            os.set_blocking(rfd, False)
            os.set_blocking(wfd, False)
            self._signal_rfd, self._signal_wfd = rfd, wfd
            self._fdtable.add_reader(rfd, self._read_signals)
        if self._signal_wakeup_installed:
            return
        try:
            # Raises ValueError outside the main thread: call it before changing anything else.
            prev = signal.set_wakeup_fd(self._signal_wfd)
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc)) from None
        self._signal_prev_wakeup_fd = prev
        self._signal_prev_is_loop = prev in _installed_wakeup_fds
        _installed_wakeup_fds.add(self._signal_wfd)
        self._signal_wakeup_installed = True

    def _uninstall_signal_wakeup(self) -> None:
        if not self._signal_wakeup_installed:
            return
        self._signal_wakeup_installed = False
        _loops_with_handlers.discard(self)
        _installed_wakeup_fds.discard(self._signal_wfd)
        prev = self._signal_prev_wakeup_fd
        if self._signal_prev_is_loop and prev not in _installed_wakeup_fds:
            prev = -1  # that loop has given its pipe up since (it may be closed, its number reused)
        try:
            current = signal.set_wakeup_fd(prev)
            if current != self._signal_wfd:
                signal.set_wakeup_fd(current)  # someone replaced ours after us: theirs stays
        except (ValueError, OSError) as exc:
            logger.info("restoring the signal wakeup fd failed: %s", exc)

    def _read_signals(self) -> None:
        while True:
            try:
                data = os.read(self._signal_rfd, 4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                self._handle_signal(signum)

    def _handle_signal(self, sig: int) -> None:
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return  # a signal someone else catches (asyncio.Runner's SIGINT), or removed meanwhile
        if handle._cancelled:
            self.remove_signal_handler(sig)
            return
        # One callback per delivered signal; a handler that raises goes to the exception handler
        # (Handle._run does that) and the loop keeps running.
        self.call_soon(handle._run)

    def _close_signals(self) -> None:
        """Remove every handler (restoring defaults and the previous wakeup fd) and close the pipe."""
        handlers = self._signal_handlers_dict
        if handlers:
            if sys.is_finalizing():
                warnings.warn(f"Closing the loop {self!r} on interpreter shutdown stage, skipping signal "
                              f"handlers removal", ResourceWarning, stacklevel=3, source=self)
                handlers.clear()
            else:
                for sig in list(handlers):
                    self.remove_signal_handler(sig)
        self._uninstall_signal_wakeup()
        for fd in (self._signal_rfd, self._signal_wfd):
            if fd >= 0:
                os.close(fd)
        self._signal_rfd = self._signal_wfd = -1

    def _signals_after_fork_in_child(self) -> None:
        # Process-local state only: the child's dispositions and wakeup fd. The pipe fds stay open until the
        # child closes the inherited loop (close() in a child closes only the child's copies).
        handlers = self._signal_handlers
        for sig in list(handlers):
            try:
                signal.signal(sig, _default_handler(sig))
            except (OSError, ValueError):
                pass
        handlers.clear()
        self._uninstall_signal_wakeup()

    def close(self) -> None:
        super().close()
        self._close_signals()


def _after_fork_in_child() -> None:
    for loop in list(_loops_with_handlers):
        loop._signals_after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
