"""What ``trio.run`` does to the thread that calls it, and how the poller lives with it.

Facts that shape this module:

- ``trio.run`` installs its own ``signal.set_wakeup_fd`` when it starts (warning if one is set already: that is
  how it detects host loops) and puts the old one back when it ends. The loop's signal pipe must stay
  installed across runs (:class:`WakeupFdHandover`).
- trio keeps "a run is active in this thread" in thread-local state, and fork() copies the forking thread's
  state into the child: a child forked inside ``trio.run`` can never call ``trio.run`` again in that thread
  ("Attempted to call run() from inside a run()"), and there is no public way to reset it. A new thread of
  the child starts with clean state and can. :func:`refuse_inside_trio` says which case the caller is in and
  what works there.
"""

from __future__ import annotations

import os
import signal
import threading

import trio.lowlevel as tl


class WakeupFdHandover:
    """Keep ``signal.set_wakeup_fd`` pointing at the loop's signal pipe across ``trio.run``.

    trio.run installs its own wakeup fd when it starts (warning if one is set already: that is how it
    detects host loops) and puts the old one back when it ends. A loop whose signal handlers were added in
    an earlier run would lose its signals for the whole run, and one whose handlers are added during a run
    would be disconnected at its end. So: clear the fd before trio starts, put ours back once trio has
    installed its own, hand trio its fd back before it ends, and after it ended reinstate whatever was
    there at the end of the run (ours) unless it was trio's. Main thread only (set_wakeup_fd's rule).
    """

    __slots__ = ("active", "outer", "trio_fd", "final")

    def __init__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        self.outer = self.trio_fd = self.final = -1
        if self.active:
            self.outer = signal.set_wakeup_fd(-1)

    def run_started(self) -> None:
        if self.active:
            self.trio_fd = _set_wakeup_fd(self.outer)
            if self.outer == -1:
                _set_wakeup_fd(self.trio_fd, warn_on_full_buffer=False)

    def run_ending(self) -> None:
        if self.active:
            end = _set_wakeup_fd(self.trio_fd, warn_on_full_buffer=False)
            self.final = -1 if end == self.trio_fd else end

    def after_run(self) -> None:
        if self.active:
            _set_wakeup_fd(self.final if self.final != -1 else self.outer)


def _set_wakeup_fd(fd: int, **kwargs: bool) -> int:
    """set_wakeup_fd, except that an fd closed meanwhile (a forked child whose inherited signal pipe was
    closed by multiloop's fork hook) means "none": there is nothing left to hand back."""
    try:
        return signal.set_wakeup_fd(fd, **kwargs)
    except (OSError, ValueError):
        return signal.set_wakeup_fd(-1)


#: (child pid, parent pid) when this process was forked by a thread that was inside ``trio.run``.
_forked_inside_run: tuple[int, int] | None = None


def _after_fork_in_child() -> None:
    global _forked_inside_run
    try:
        tl.current_trio_token()  # the forking thread's state, copied by fork()
    except RuntimeError:
        return
    _forked_inside_run = (os.getpid(), os.getppid())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def refuse_inside_trio(what: str) -> None:
    try:
        tl.current_trio_token()
    except RuntimeError:
        return
    forked = _forked_inside_run
    if forked is not None and forked[0] == os.getpid():
        raise RuntimeError(
            f"multiloop trio backend: {what} cannot start trio.run in this thread: this process "
            f"(pid {forked[0]}) was forked from pid {forked[1]} while this thread was inside trio.run, and trio "
            f"keeps its 'a run is active' state per thread across fork() with no way to reset it. In the "
            f"child, run the asyncio code in a new thread (threading.Thread(target=multiloop.run, "
            f"args=(main(),), kwargs={{'backend': 'trio'}})), or on another backend "
            f"(multiloop.run(main(), backend='poll')), or start the child with exec instead of a bare fork "
            f"(subprocess, multiprocessing's 'spawn' or 'forkserver' start method)")
    raise RuntimeError(f"multiloop trio backend: {what} cannot start a new trio.run inside a running trio "
                       f"program; use 'async with multiloop_trio.open_loop()' there instead")
