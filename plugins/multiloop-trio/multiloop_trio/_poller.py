"""The trio backend's Poller: multiloop's core schedules; trio waits, or runs as the loop's guest.

Facts about trio that shape this module (the two ways of waiting have their own: :mod:`._mux`,
:mod:`._watches`; what ``trio.run`` does to the thread: :mod:`._runstate`; trio as a guest of the loop:
:mod:`._guest`):

- trio has no "wait for any of these fds" call in its public API. ``trio.lowlevel.wait_readable(fd)`` /
  ``wait_writable(fd)`` park *one task* until one fd is ready in one direction. A task per watched fd costs
  about 3.6 KB and a registration syscall per wait; but an epoll set (or a kqueue) is itself an fd that is
  readable while any of its registrations is ready, so one task can wait for a whole table through it.
- Errors surface in the waiting task, not at registration: a closed fd, a regular file (trio's epoll refuses
  it with EPERM) would only be found later, far from the call that introduced it.
- trio runs other tasks whenever a task checkpoints, in the same thread. So while the loop waits, trio code
  may call ``loop.call_soon`` or complete an asyncio future; the core then calls our waker (see
  ``LoopCore.call_soon``), which must go through ``TrioToken.run_sync_soon`` because it may also be called
  from another thread or from a signal handler.
- ``trio.run`` opens files of its own when it starts (its epoll fd, its wake-up sockets), which take the
  lowest free numbers.
- ``trio.run`` sets ``sniffio.thread_local.name = "trio"`` for its whole duration, and installs async
  generator hooks that claim every async generator first iterated inside *any* trio task -- asyncio code
  runs inside a trio task inside ``trio.run``, so both must be corrected around the core's callbacks
  (the hooks: :mod:`._agens`). (A
  guest run sets the name only during its ticks; its hooks pass on generators first iterated outside trio
  tasks, but only those of the current run: one that outlives a drive would be claimed in the next.)
- A blocking call into another trio run (``trio.from_thread.run``) refuses to run inside a trio task: code
  running inside ``trio.run``'s tasks can never make one, which stock asyncio code can.

Design:

- The poller keeps the interest table (``_interest``: fd -> READ/WRITE) itself; a *watcher* turns it into trio
  waits while the poller is *attached* to a trio run. ``_attach`` starts the watcher on the whole table,
  ``_detach`` stops it, ``register``/``modify``/``unregister`` pass changes on while attached. Inside
  ``open_loop`` the poller is attached to the caller's run. In ``drive`` (``loop.run_forever`` from plain
  code) each run starts trio as a *guest* of the loop (:mod:`._guest`): the loop blocks in the multiplexed
  watcher's inner poller itself, trio's I/O wait runs in trio's worker thread, and the loop's callbacks run
  outside any trio task (so blocking calls into other trio runs work, as with stock asyncio) while trio's
  synchronous API and the adapters keep working. Where there is no inner poller to block in (the per-fd
  fallback), each run is its own ``trio.run`` with the passes in its main task, as before.
- The watcher is :class:`~._mux.MuxWatcher` when a registered backend has a poller that is itself pollable
  (epoll on Linux, kqueue on BSD/macOS; the best automatic one, or ``$MULTILOOP_TRIO_INNER``): every fd goes
  into that inner poller, created per run, and one trio system task waits on its fd. Otherwise (no such
  backend, ``MULTILOOP_TRIO_INNER=none``, or the inner poller cannot be created for a run, e.g. EMFILE) it is
  :class:`~._watches.FdWatches`, one trio system task per (fd, direction). System tasks either way, because
  they are infrastructure: a user's cancel scope around ``open_loop`` must not stop I/O that asyncio tasks
  still need while they shut down.
- ``_run_passes`` is the loop: ask the core how long it may wait, wait (a parked task with a trio deadline,
  woken by the watcher or the waker), hand the watcher's events to the core, let the watcher wait again.
- Registration checks the fd synchronously (``fstat``): a closed fd is ``BadFdError`` at the call that
  introduced it, a regular file or directory ``UnpollableFdError`` (the core treats it as always ready, as
  select and poll do). Both watchers report an fd closed behind the loop's back as INVALID once (the core
  drops it and says so), after the pass whose callbacks closed it; a character device the kernel cannot
  watch (EPERM) is always ready.
- ``drive`` finds the fds closed since the last run before trio or the inner poller open files that may
  take their numbers: the watcher reports them INVALID at the first pass and never watches the numbers.
- ``reports_closed_fds`` is True with the per-fd watches (trio's re-arm fails with EBADF for every closed fd)
  and False with the multiplexed watcher, as for its inner epoll: a registration a ``dup()`` keeps alive may
  report a closed number once before it is found; the core's sampling stays on, and the inner poller's
  ``discard_stale`` gets rid of such registrations.
- ``drives_loop`` is True: the core calls ``drive`` from ``run_forever``. ``poll`` exists for callers that
  use a Poller directly (the backend-author kit does): one short ``trio.run`` per call.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

import outcome
import sniffio
import trio
import trio.lowlevel as tl

from multiloop import BadFdError, Iteration, Poller, PollerError, UnpollableFdError

from ._agens import AsyncGenRouting
from ._guest import GuestHost, HostWake
from ._mux import MuxWatcher, inner_backend
from ._runstate import WakeupFdHandover, refuse_inside_trio
from ._watches import FdWatches

NAME = "trio"
logger = logging.getLogger("multiloop.trio")

# The poller attached to the trio run of this thread (at most one: one trio run per thread, and one running
# asyncio loop per thread). The adapters find it here.
_local = threading.local()


def current_poller() -> TrioPoller | None:
    """The TrioPoller attached to the trio run of this thread, if any."""
    return getattr(_local, "poller", None)


class Watcher(Protocol):
    """How the interest table becomes trio waits during one trio run (:mod:`._mux`, :mod:`._watches`)."""

    name: str

    def start(self, interest: dict[int, int], closed: set[int]) -> None:
        """In a trio run: watch every fd of ``interest`` (the poller's table, the same object), except those in
        ``closed``, which are reported INVALID at the first pass."""

    def stop(self) -> None:
        """End of the run: stop every wait (synchronously, so fds may be closed next), drop pending events."""

    def forget(self) -> None:
        """A forked child closing its copy: drop everything without touching trio's (shared) state."""

    def armed(self) -> bool:
        """Every wait has reached trio at least once since ``start`` (trio registered its fd)."""

    def change(self, fd: int, old: int, new: int) -> None:
        """The interest in ``fd`` changed from ``old`` to ``new`` (0: not registered). May raise PollerError."""

    def discard_stale(self, fds: list[int]) -> None:
        """The core got events for ``fds`` and holds no registration for them."""

    def has_events(self) -> bool:
        """Something is ready to be taken: the pass must not block."""

    def take(self) -> list[tuple[int, int]]:
        """The events to dispatch in this pass."""

    def done(self) -> None:
        """The pass has dispatched what ``take`` returned: wait again."""

    def statistics(self) -> dict[str, int]:
        """Counters (no syscall)."""


class TrioPoller(Poller):
    """See the module docstring. One per loop; usable in ``trio.run`` (drive) or in an ``open_loop``.

    ``inner``: the backend whose poller multiplexes the fds (``"auto"``, a backend name, or ``"none"`` for one
    trio task per fd); None (the default) means ``$MULTILOOP_TRIO_INNER``, else ``"auto"``."""

    name = NAME
    drives_loop = True
    reports_closed_fds = True  # the per-fd watches: a wait on a closed fd fails with EBADF (see __init__)

    def __init__(self, inner: str | None = None) -> None:
        backend = inner_backend(inner)
        self._interest: dict[int, int] = {}
        self._mux = None if backend is None else MuxWatcher(backend, self._wake)
        self._watches: FdWatches | None = None  # made when needed: no inner poller, or it failed for a run
        self._watcher: Watcher | None = None  # while attached
        if self._mux is not None:
            # As its inner poller (epoll's stale registrations); see the module docstring.
            self.reports_closed_fds = False  # type: ignore[misc]
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._sleeper: Any = None
        self._wake_requested = False
        self._attached = False
        self._attached_pid = 0
        self._driving = False
        self._drive_stop_waiters: set[trio.Event] = set()
        self._agens = AsyncGenRouting()
        self._wakeups = 0
        self._mux_failures = 0
        self._closed_before_run: set[int] = set()
        self._host_wake: HostWake | None = None  # made at the first guest drive, closed by close()
        self._guest_wake: HostWake | None = None  # while a guest drive runs: what the core's waker writes
        self._guest_runs = 0
        self._mux_failed = False  # drive could not create the inner poller: this trio.run waits per fd

    @property
    def waiting_with(self) -> str:
        """How fds are waited for: ``"multiplexed (epoll)"`` (one trio task on an inner poller) or
        ``"per-fd watches"`` (one trio task per fd and direction); during a run, the way that run uses."""
        if self._watcher is not None:
            return self._watcher.name
        return self._mux.name if self._mux is not None else FdWatches.name

    # ---------------------------------------------------------------------------------- registration
    def register(self, fd: int, events: int) -> None:
        _check_fd(fd)
        if self._watcher is not None:
            self._watcher.change(fd, 0, events)
        self._interest[fd] = events

    def modify(self, fd: int, events: int) -> None:
        old = self._interest[fd]
        if self._watcher is not None:
            self._watcher.change(fd, old, events)
        self._interest[fd] = events

    def unregister(self, fd: int) -> None:
        old = self._interest.pop(fd)
        if self._watcher is not None:
            self._watcher.change(fd, old, 0)

    def discard_stale(self, fds: list[int]) -> None:
        if self._watcher is not None:
            self._watcher.discard_stale(fds)

    def close(self) -> None:
        if self._attached:
            if os.getpid() != self._attached_pid:
                # A forked child closing its copy: the watcher's tasks are copies of the parent's, and
                # stopping them would update the trio epoll/kqueue object the child shares with the parent.
                if self._watcher is not None:
                    self._watcher.forget()
                    self._watcher = None
                self._attached = False
                self._token = self._nursery = self._sleeper = None
                if current_poller() is self:
                    _local.poller = None
            else:
                self._detach()
        self._interest.clear()
        if self._host_wake is not None:
            self._host_wake.close()
            self._host_wake = None

    def make_waker(self) -> Callable[[], None]:
        return self._threadsafe_wake

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """The blocking-poller interface, for completeness (the core uses ``drive``): one short trio.run."""
        if self._attached:
            raise RuntimeError("trio backend: poll() cannot be called while the poller is attached to trio")
        refuse_inside_trio("poll()")
        self._closed_before_run = self._closed_fds()  # see drive()
        return trio.run(self._poll_main, timeout)

    async def _poll_main(self, timeout: float | None) -> list[tuple[int, int]]:
        self._attach(None, None, None)
        try:
            watcher = self._watcher
            assert watcher is not None
            # "Nothing is ready" may only be concluded once trio has looked at the kernel with every wait
            # registered. trio runs tasks in batches and consults its I/O manager before each batch; a task
            # it wakes runs in the next batch. So: wait until every waiting task has made its first call into
            # trio's wait (which registers the fd before it parks), then checkpoint twice: the first puts
            # us in the batch after an I/O check, together with the tasks that check woke; the second
            # lets those run (and record readiness) before we look.
            while not watcher.armed():
                await tl.checkpoint()
            await tl.checkpoint()
            await tl.checkpoint()
            if not watcher.has_events() and timeout != 0:
                await self._block(timeout)
            events = watcher.take()
            watcher.done()
            return events
        finally:
            self._detach()

    # ----------------------------------------------------------------------------------------- waking
    def _wake(self) -> None:
        """In the trio thread, from trio context: wake the task that is blocked in ``_block``."""
        task = self._sleeper
        if task is not None:
            self._sleeper = None
            tl.reschedule(task)

    def _threadsafe_wake(self) -> None:
        # Called by the core from any thread, or from a signal handler in the trio thread; run_sync_soon is
        # safe in both. Coalesced: one request in flight at a time. On the guest drive, the host's wait.
        guest = self._guest_wake
        if guest is not None:
            guest.wake()
            return
        if self._wake_requested:
            return
        token = self._token
        if token is None:
            return  # not running: the next pass sees the callback anyway
        self._wake_requested = True
        try:
            token.run_sync_soon(self._wake_from_token)
        except trio.RunFinishedError:
            self._wake_requested = False

    def _wake_from_token(self) -> None:
        self._wake_requested = False
        self._wakeups += 1
        self._wake()

    def statistics(self) -> dict[str, int]:
        """``registered``: fds watched; ``multiplexed``: 1 when fds are waited for through an inner poller, 0
        with one trio task per fd and direction; ``watch_tasks``: trio tasks waiting now (while attached to a
        run); ``watch_tasks_started``: since creation; ``threadsafe_wakeups``: waits ended through the trio
        token (call_soon_threadsafe, signals); ``invalid_fds``: fds found closed behind the loop's back,
        reported to the core as INVALID; ``mux_failures``: runs that fell back to per-fd tasks because the
        inner poller could not be created. Multiplexed: ``inner_polls`` (inner ``poll(0)`` calls),
        ``inner_replaced`` (kernel objects the inner poller replaced), and the inner poller's own counters,
        prefixed ``inner_``, summed over runs."""
        stats = {"registered": len(self._interest), "multiplexed": int(self._mux is not None),
                 "watch_tasks": 0, "watch_tasks_started": 0, "threadsafe_wakeups": self._wakeups,
                 "invalid_fds": 0, "mux_failures": self._mux_failures, "guest_runs": self._guest_runs}
        for watcher in (self._mux, self._watches):
            if watcher is not None:
                for key, value in watcher.statistics().items():
                    stats[key] = stats.get(key, 0) + value
        return stats

    async def _block(self, timeout: float | None) -> None:
        if timeout is None:
            await self._sleep()  # no cancel scope: a fifth of the cost of an fd round trip
        else:
            with trio.move_on_at(trio.current_time() + timeout):
                await self._sleep()

    async def _sleep(self) -> None:
        self._sleeper = tl.current_task()
        await tl.wait_task_rescheduled(self._abort_sleep)

    def _abort_sleep(self, _: Any) -> Any:
        self._sleeper = None
        return tl.Abort.SUCCEEDED

    # --------------------------------------------------------------------------------- attach / detach
    def _attach(self, nursery: trio.Nursery | None, aio_hooks: Any, trio_hooks: Any) -> None:
        """Bind to the current trio run: start the watcher, route async generator hooks, become findable."""
        if self._attached:
            raise RuntimeError("this trio poller is already attached to a trio run")
        if current_poller() is not None:
            raise RuntimeError("another multiloop trio loop is already running in this trio run")
        self._token = tl.current_trio_token()
        self._attached_pid = os.getpid()
        self._wake_requested = False  # a request left over from an earlier run will never be answered
        self._nursery = nursery
        self._attached = True
        _local.poller = self
        if aio_hooks is not None:
            self._agens.install(aio_hooks, trio_hooks)
        closed, self._closed_before_run = self._closed_before_run, set()
        try:
            self._watcher = self._open_watcher()
            self._watcher.start(self._interest, closed)
        except BaseException:
            self._detach()
            raise

    def _open_watcher(self) -> Watcher:
        mux = self._mux
        skip_mux, self._mux_failed = self._mux_failed, False
        if mux is not None and not skip_mux:
            try:
                mux.open()
                return mux
            except Exception as exc:  # noqa: BLE001 - EMFILE, a broken backend: this run waits per fd
                self._mux_failures += 1
                logger.warning("multiloop-trio: cannot create the inner %s poller (%s: %s); this trio run "
                               "waits with one trio task per fd", mux.backend.name, type(exc).__name__, exc)
        if self._watches is None:
            self._watches = FdWatches(self._wake)
        return self._watches

    def _detach(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        self._sleeper = None
        self._notify_drive_stopped()
        self._agens.restore()
        self._token = None
        self._nursery = None
        self._attached = False
        if current_poller() is self:
            _local.poller = None

    def spawn(self, async_fn: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        """Start a trio task for the adapters, in the nursery of the current attachment."""
        if self._nursery is None:
            raise RuntimeError("the multiloop trio loop is not running inside trio")
        self._nursery.start_soon(async_fn, *args, name=name)

    # --------------------------------------------------------------------------------------- the passes
    async def _run_passes(self, iteration: Iteration, until: Callable[[], bool] | None = None) -> None:
        """Run loop passes until the core says stop (``until`` None) or ``until()`` becomes true."""
        timeout_of = iteration.timeout
        dispatch = iteration.dispatch
        thread_local = sniffio.thread_local
        agens = self._agens
        watcher = self._watcher
        assert watcher is not None, "attach first"
        has_events = watcher.has_events
        take = watcher.take
        self._driving = True
        try:
            while True:
                timeout = timeout_of()
                if timeout == 0 or has_events():
                    await tl.checkpoint()
                else:
                    await self._block(timeout)
                events = take()
                outer_library, thread_local.name = thread_local.name, "asyncio"
                agens.in_asyncio = True
                try:
                    go_on = dispatch(events)
                finally:
                    agens.in_asyncio = False
                    thread_local.name = outer_library
                    watcher.done()
                if until is None:
                    if not go_on:
                        return
                elif until():
                    return
        finally:
            self._driving = False
            self._notify_drive_stopped()

    def _notify_drive_stopped(self) -> None:
        waiters, self._drive_stop_waiters = self._drive_stop_waiters, set()
        for event in waiters:
            event.set()

    @property
    def driving(self) -> bool:
        """True while some trio task is running the loop's passes (the adapters wait only then)."""
        return self._driving

    def add_drive_stop_waiter(self, event: trio.Event) -> None:
        """``event`` is set when the current passes stop (so nobody waits for a loop that no longer runs)."""
        self._drive_stop_waiters.add(event)

    def discard_drive_stop_waiter(self, event: trio.Event) -> None:
        self._drive_stop_waiters.discard(event)

    # ------------------------------------------------------------------------------ run_forever's drive
    def drive(self, iteration: Iteration) -> None:
        """``loop.run_forever()``: trio as a guest of the loop (:mod:`._guest`) when there is an inner poller
        to block in; else one ``trio.run`` whose main task runs the passes until the loop stops."""
        refuse_inside_trio("run_forever()/run_until_complete()")
        # Before anything opens a file: see _drive_in_trio_run.
        closed = self._closed_fds()
        mux = self._mux
        if mux is not None:
            try:
                mux.open()
            except Exception as exc:  # noqa: BLE001 - EMFILE, a broken backend: this run waits per fd
                self._mux_failures += 1
                logger.warning("multiloop-trio: cannot create the inner %s poller (%s: %s); this run waits "
                               "inside trio.run with one trio task per fd", mux.backend.name,
                               type(exc).__name__, exc)
            else:
                self._guest_drive(iteration, mux, closed)
                return
            self._mux_failed = True
        self._closed_before_run = closed
        self._drive_in_trio_run(iteration)

    def _guest_drive(self, iteration: Iteration, mux: MuxWatcher, closed: set[int]) -> None:
        """One guest run around the loop's passes; see :mod:`._guest`."""
        wake = self._host_wake
        host: GuestHost | None = None
        wakeup = WakeupFdHandover()
        try:
            if wake is None:
                wake = self._host_wake = HostWake()
            mux.start(self._interest, closed, host=wake)
            host = GuestHost(wake)
            self._watcher = mux
            self._attached = True
            self._attached_pid = os.getpid()
            _local.poller = self
            self._guest_wake = wake
            self._guest_runs += 1
            self._run_guest(iteration, mux, host, wakeup)
        finally:
            self._guest_wake = None
            self._driving = False
            if self._watcher is mux:
                self._detach()
            else:
                mux.stop()
            wakeup.after_run()

    def _run_guest(self, iteration: Iteration, mux: MuxWatcher, host: GuestHost, wakeup: WakeupFdHandover) -> None:
        aio_hooks = sys.get_asyncgen_hooks()  # the loop's, installed by enter_running()
        scope = trio.CancelScope()
        tl.start_guest_run(self._guest_main, scope, wakeup,
                           run_sync_soon_threadsafe=host.run_sync_soon_threadsafe,
                           run_sync_soon_not_threadsafe=host.run_sync_soon_not_threadsafe,
                           done_callback=host.done_callback)
        wakeup.run_started()  # trio installed its wakeup fd while starting (see WakeupFdHandover)
        # trio's hooks (installed by start_guest_run) for generators first iterated in trio tasks, the loop's
        # for those of asyncio code, including generators that outlive one run (trio's own routing would
        # claim those in the next run).
        self._agens.install(aio_hooks, sys.get_asyncgen_hooks())
        failure: BaseException | None = None
        try:
            # The guest's main task holds the nursery of trio_as_aio calls: let it start before any callback.
            host.pump_until(lambda: self._nursery is not None or host.outcome is not None)
            if host.outcome is None:
                self._driving = True
                host.passes(iteration, mux.wait, mux.done, self._agens)
        except BaseException as exc:  # noqa: BLE001 - re-raised once the guest run has finished
            failure = exc
        finally:
            self._driving = False
            self._notify_drive_stopped()
            ended_early = host.outcome is not None
            self._agens.restore()  # before trio's close puts back the ones it found
            scope.cancel()  # host code is inside the run: this wakes trio
            host.pump_until(lambda: host.outcome is not None)
        result = host.outcome
        assert result is not None
        if failure is not None:
            if isinstance(result, outcome.Error) and not isinstance(result.error, trio.Cancelled):
                logger.error("multiloop-trio: the trio guest run failed while the loop's run was ending with "
                             "%s", type(failure).__name__, exc_info=result.error)
            try:
                raise failure
            finally:
                failure = None
        if isinstance(result, outcome.Error):
            result.unwrap()  # the guest run failed (a crashed system task, KeyboardInterrupt in trio)
        if ended_early:
            raise RuntimeError("multiloop trio backend: the trio guest run ended while the loop was running")

    async def _guest_main(self, scope: trio.CancelScope, wakeup: WakeupFdHandover) -> None:
        failure: BaseException | None = None
        try:
            with scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    try:
                        await trio.sleep_forever()
                    except trio.Cancelled:
                        raise
                    except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt: raised bare, below
                        failure = exc
                    finally:
                        self._nursery = None
                        # trio_as_aio calls cannot outlive the drive: their trio side is cancelled here.
                        nursery.cancel_scope.cancel()
        finally:
            wakeup.run_ending()
        if failure is not None:
            try:
                raise failure
            finally:
                failure = None

    def _drive_in_trio_run(self, iteration: Iteration) -> None:
        """The fallback drive: one ``trio.run`` whose main task runs the passes until the loop stops."""
        aio_hooks = sys.get_asyncgen_hooks()  # the loop's, installed by enter_running()
        # trio.run opens files of its own (its epoll fd, its wake-up sockets), which take the lowest free
        # numbers (so does the multiplexed watcher's inner poller): an fd closed since the last run with its
        # registration left would get one, and the watcher would watch that file under the old registration
        # (a wake-up socket is always writable: a spin, nothing reported; trio's epoll fd in the inner epoll
        # set, which trio's epoll watches, is a loop the kernel refuses with ELOOP). ``drive`` found those
        # while the numbers were still free (one fstat per registered fd per run, not per pass).
        wakeup = WakeupFdHandover()
        try:
            trio.run(self._drive_main, iteration, aio_hooks, wakeup)
        finally:
            wakeup.after_run()

    def _closed_fds(self) -> set[int]:
        return {fd for fd in self._interest if not _is_open(fd)}

    async def _drive_main(self, iteration: Iteration, aio_hooks: Any, wakeup: WakeupFdHandover) -> None:
        wakeup.run_started()
        try:
            await self._drive_nursery(iteration, aio_hooks)
        finally:
            wakeup.run_ending()

    async def _drive_nursery(self, iteration: Iteration, aio_hooks: Any) -> None:
        failure: BaseException | None = None
        async with trio.open_nursery() as nursery:
            self._attach(nursery, aio_hooks, sys.get_asyncgen_hooks())
            try:
                await self._run_passes(iteration)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, outside the nursery
                # Raised here, inside the nursery, a KeyboardInterrupt would come out of trio.run wrapped
                # in an ExceptionGroup; run_forever's callers (asyncio.Runner) expect it bare.
                failure = exc
            finally:
                self._detach()
                # trio_as_aio calls cannot outlive trio.run: their trio side is cancelled here.
                nursery.cancel_scope.cancel()
        if failure is not None:
            try:
                raise failure
            finally:
                failure = None


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as exc:
        return exc.errno != errno.EBADF
    return True


def _check_fd(fd: int) -> None:
    if not isinstance(fd, int) or fd < 0:
        raise BadFdError(f"{NAME}: cannot watch fd {fd!r}: not a valid file descriptor", backend=NAME, fd=fd,
                         errno=errno.EBADF)
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise BadFdError(f"{NAME}: cannot watch fd {fd}: it is not an open file descriptor (EBADF)",
                             backend=NAME, fd=fd, errno=exc.errno) from None
        raise PollerError(f"{NAME}: cannot watch fd {fd}: {exc.strerror or exc}", backend=NAME, fd=fd,
                          errno=exc.errno) from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        raise UnpollableFdError(f"{NAME}: cannot watch fd {fd}: trio cannot wait on regular files or "
                                f"directories (they are always ready)", backend=NAME, fd=fd, errno=errno.EPERM)
