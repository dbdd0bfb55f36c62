"""The drive path: ``loop.run_forever()`` runs trio as a *guest* of the loop, not the loop inside ``trio.run``.

Facts about trio that shape this module:

- Blocking calls into trio from another thread (``trio.from_thread.run``, anyio's blocking portals) refuse
  to run inside a trio task ("this is a blocking function; call it from a thread"): they check
  ``trio.lowlevel.current_task()``. When the loop's callbacks run inside a trio task (the loop waiting inside
  ``trio.run``), asyncio code can never make such a call, which stock asyncio allows.
- ``trio.lowlevel.start_guest_run`` runs trio on top of a *host* loop: trio hands the host callables to run
  (``run_sync_soon_threadsafe``, and ``run_sync_soon_not_threadsafe`` from the host's own thread), each a
  *tick* that runs a batch of trio tasks; trio's own I/O wait runs in a worker thread, which calls the host
  back when something is ready. The host's own code runs outside any trio task, yet inside the run:
  ``current_trio_token()``, ``current_time()``, ``spawn_system_task``, ``Event.set()``, cancel scopes all
  work from the loop's callbacks (trio wakes itself when host code reschedules a task).
- A guest run installs, for the thread and for its whole duration, "a run is active" state, its SIGINT
  handler (only if Python's default one is installed), its ``signal.set_wakeup_fd`` and its async generator
  hooks (which pass generators first iterated outside a trio task on to the hooks it found).
- trio must finish (``done_callback``) before the host stops; it finishes after its main task returns and
  its system tasks are cancelled, which takes a few ticks and one call back from its I/O thread.

Design: the loop is the host and trio the guest, one guest run per ``drive`` (``run_forever``). The host
blocks in the inner poller of the multiplexed watcher (:mod:`._mux`, host-polled: no trio task), where a
:class:`HostWake` fd is registered too; trio's ticks go into the host's own queue (not the loop's ready
queue: after ``loop.stop()`` the guest must wind down without running asyncio callbacks that belong to the
next run) and wake that fd when called from another thread. A pass: run the queued ticks, ask the core how
long it may wait, wait, dispatch. The guest's main task holds the nursery that ``trio_as_aio`` calls run in.

Why a guest run per drive and not one for the loop's life: between runs the thread would stay "inside a
trio run" (``trio.run`` in that thread fails), with trio's SIGINT handler, wakeup fd and async generator hooks
installed while no loop runs, and with trio's epoll fd and worker thread alive across ``fork()`` (the
backend claims ``fork_safe`` because no kernel state outlives a run). A start and a stop cost two hand-offs
to trio's worker thread; a ``run_until_complete`` costs about what it cost with ``trio.run`` per drive.

The fallback (no pollable inner poller, or it cannot be created for a run) keeps the loop inside ``trio.run``
(:meth:`TrioPoller._drive_in_trio_run`): there the callbacks still run inside a trio task.
"""

from __future__ import annotations

import collections
import os
import select
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import outcome

    from multiloop import Iteration

    from ._agens import AsyncGenRouting


class HostWake:
    """An eventfd (a non-blocking pipe where there is none) that ends the host's wait. Coalesced: written once
    until drained. Called from any thread and from signal handlers; a lock makes "write" and "close" exclusive
    (a closed fd number may be reused at once by another ``open()`` in the process)."""

    __slots__ = ("fd", "_wfd", "_eventfd", "pending", "_lock", "_pid")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.pending = False
        if hasattr(os, "eventfd"):
            self.fd = self._wfd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self._eventfd = True
        else:
            self.fd, self._wfd = os.pipe()
            for fd in (self.fd, self._wfd):
                os.set_blocking(fd, False)
            self._eventfd = False

    def wake(self) -> None:
        if self.pending:
            return
        self.pending = True
        with self._lock:
            if self._wfd < 0:
                return
            try:
                if self._eventfd:
                    os.eventfd_write(self._wfd, 1)
                else:
                    os.write(self._wfd, b"\0")
            except (BlockingIOError, InterruptedError):
                pass  # already readable

    def drain(self) -> None:
        try:
            if self._eventfd:
                os.eventfd_read(self.fd)
            else:
                while os.read(self.fd, 4096):
                    pass
        except (BlockingIOError, InterruptedError):
            pass
        # After the read: a wake() in between found pending set and wrote nothing, but what it announced was
        # queued before it, and the host runs the queue after draining.
        self.pending = False

    def wait(self) -> None:
        """Block until woken (the guest's shutdown, when the host waits for trio alone)."""
        waiter = select.poll()
        waiter.register(self.fd, select.POLLIN)
        waiter.poll()
        self.drain()

    def close(self) -> None:
        if os.getpid() != self._pid:
            # A forked child: trio's worker thread may have held the lock at fork() (waking the host), and
            # in the child nobody will release it; the child is alone with its copies of the fds.
            self._lock = threading.Lock()
        with self._lock:
            fds = {self.fd, self._wfd}
            self.fd = self._wfd = -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)


class GuestHost:
    """The host side of one guest run: trio's callback queue, its outcome, and the passes."""

    __slots__ = ("wake", "queue", "outcome", "stop_requested")

    def __init__(self, wake: HostWake) -> None:
        self.wake = wake
        self.queue: collections.deque[Callable[[], object]] = collections.deque()
        self.outcome: outcome.Outcome[Any] | None = None
        self.stop_requested = False

    # ------------------------------------------------------------------------- what trio is handed
    def run_sync_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        self.queue.append(fn)  # deque.append is atomic, also on free-threaded builds
        self.wake.wake()

    def run_sync_soon_not_threadsafe(self, fn: Callable[[], object]) -> None:
        self.queue.append(fn)  # the host's thread: the pass looks at the queue before it waits

    def done_callback(self, result: outcome.Outcome[Any]) -> None:
        self.outcome = result

    # ------------------------------------------------------------------------------------ running
    def run_ticks(self) -> None:
        """Run what trio queued; what those queue in turn waits for the next round (the loop gets a turn)."""
        queue = self.queue
        for _ in range(len(queue)):
            queue.popleft()()

    def passes(self, iteration: Iteration, wait: Callable[[float | None], list[tuple[int, int]]],
               done: Callable[[], None], agens: AsyncGenRouting) -> None:
        """The loop's passes until the core says stop, or the guest run ends by itself (``outcome`` set)."""
        timeout_of = iteration.timeout
        dispatch = iteration.dispatch
        queue = self.queue
        run_ticks = self.run_ticks
        while True:
            if queue:
                run_ticks()
                if self.outcome is not None:
                    return
            timeout = timeout_of()
            events = wait(0 if queue else timeout)
            agens.in_asyncio = True
            try:
                go_on = dispatch(events)
            finally:
                agens.in_asyncio = False
                done()
            if not go_on:
                return

    def pump_until(self, finished: Callable[[], bool]) -> None:
        """Run trio alone (no asyncio callback) until ``finished()``. A KeyboardInterrupt meanwhile is held
        back until then, once: trio must finish before the loop may stop; a second one propagates."""
        interrupted: BaseException | None = None
        while not finished():
            try:
                if self.queue:
                    self.run_ticks()
                else:
                    self.wake.wait()
            except KeyboardInterrupt as exc:
                if interrupted is not None:
                    raise
                interrupted = exc
        if interrupted is not None:
            try:
                raise interrupted
            finally:
                interrupted = None
