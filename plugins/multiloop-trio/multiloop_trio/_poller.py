"""The trio backend's Poller: multiloop's core schedules, trio waits.

Facts about trio that shape this module:

- trio has no "wait for any of these fds" call in its public API. ``trio.lowlevel.wait_readable(fd)`` /
  ``wait_writable(fd)`` park *one task* until one fd is ready in one direction, and at most one task may wait
  per fd and direction (a second gets ``BusyResourceError``). Underneath, trio uses epoll/kqueue with
  one-shot registrations: every wait costs a registration syscall, and a woken task is no longer registered.
- A task that is cancelled while parked in ``wait_readable`` is removed from trio's table *synchronously*,
  inside ``CancelScope.cancel()`` (its abort function runs then), so after ``cancel()`` the fd may be closed.
  An fd closed while a task still waits on it is silently dropped by the kernel and the task would wait
  forever; ``trio.lowlevel.notify_closing`` exists for code that closes an fd someone may be waiting on.
  The core always unregisters (we cancel the waiter) before a transport closes its socket.
- Errors (EBADF, EPERM for regular files, EPOLLERR/HUP) surface as exceptions or as readiness in the waiting
  task, not at registration time. trio's epoll and kqueue managers register with one-shot semantics and,
  when re-arming fails (the fd was closed behind their back), drop their own record and raise the OSError
  into the waiting task; a closed fd whose registration vanished with the file is never reported at all.
- trio keeps "a run is active in this thread" in thread-local state, and fork() copies the forking thread's
  state into the child: a child forked inside ``trio.run`` can never call ``trio.run`` again in that thread
  ("Attempted to call run() from inside a run()"), and there is no public way to reset it. A new thread of
  the child starts with clean state and can.
- trio runs other tasks whenever a task checkpoints, in the same thread. So while the loop waits, trio code
  may call ``loop.call_soon`` or complete an asyncio future; the core then calls our waker (see
  ``LoopCore.call_soon``), which must go through ``TrioToken.run_sync_soon`` because it may also be called
  from another thread or from a signal handler.
- ``trio.run`` sets ``sniffio.thread_local.name = "trio"`` for its whole duration, and installs async
  generator hooks that claim every async generator first iterated inside *any* trio task -- asyncio code
  runs inside a trio task here, so both must be corrected around the core's callbacks.

Design:

- One trio *system task* per registered (fd, direction) -- a "watch". It waits, records the readiness in
  ``_events``, wakes the task running the loop's passes, then parks until that pass has dispatched, and
  only then waits again (level-triggered behaviour: the callback has consumed what made the fd ready, or the
  next wait reports it again at once). System tasks, because they are infrastructure: a user's cancel scope
  around ``open_loop`` must not stop I/O that asyncio tasks still need while they shut down.
- ``register``/``modify``/``unregister`` keep the interest table (``_interest``) and start or cancel watches
  when the poller is *attached* to a trio run; ``_attach`` starts watches for everything already
  registered (except fds closed since the last run, reported INVALID: ``drive`` finds them before
  ``trio.run`` opens files that may take their numbers), ``_detach`` cancels them. In ``drive`` (``loop.run_forever``) each run is its own
  ``trio.run``; inside ``open_loop`` the poller is attached to the caller's run.
- ``_run_passes`` is the loop: ask the core how long it may wait, wait (a parked task with a trio deadline,
  woken by a watch or the waker), hand the events to the core, re-arm the watches that reported.
- Registration checks the fd synchronously (``fstat``): a closed fd is ``BadFdError`` at the call that
  introduced it, a regular file or directory ``UnpollableFdError`` (the core treats it as always ready, as
  select and poll do). EBADF in a watch (the fd was closed behind the loop's back) is reported as INVALID,
  like poll's POLLNVAL: the core drops the registration and reports it once. Reporting ERROR would wake the
  callbacks, re-arm the watch, meet the same error at once, and spin. ``ClosedResourceError`` (trio code
  called ``notify_closing``: the fd is about to be closed, still open) is ERROR: the callbacks run once,
  and the next wait finds the fd closed. EPERM (a character device epoll refuses) is "always ready".
- ``drives_loop`` is True: the core calls ``drive`` from ``run_forever``. ``poll`` exists for callers that
  use a Poller directly (the backend-author kit does): one short ``trio.run`` per call.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import stat
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

import sniffio
import trio
import trio.lowlevel as tl

from multiloop import (
    ERROR,
    INVALID,
    READ,
    WRITE,
    BadFdError,
    Iteration,
    Poller,
    PollerError,
    UnpollableFdError,
)

NAME = "trio"
logger = logging.getLogger("multiloop.trio")

_DIRECTIONS = (READ, WRITE)
# The poller attached to the trio run of this thread (at most one: one trio run per thread, and one running
# asyncio loop per thread). The adapters find it here.
_local = threading.local()


def current_poller() -> TrioPoller | None:
    """The TrioPoller attached to the trio run of this thread, if any."""
    return getattr(_local, "poller", None)


class _Watch:
    """One trio task waiting for one fd in one direction."""

    __slots__ = ("fd", "direction", "scope", "parked", "armed")

    def __init__(self, fd: int, direction: int) -> None:
        self.fd = fd
        self.direction = direction
        self.scope = trio.CancelScope()
        self.parked: Any = None  # the task, while it waits for re-arming
        self.armed = False  # has reached trio's wait at least once (trio registered the fd)


class TrioPoller(Poller):
    """See the module docstring. One per loop; usable in ``trio.run`` (drive) or in an ``open_loop``."""

    name = NAME
    drives_loop = True
    reports_closed_fds = True  # a wait on a closed fd fails with EBADF: reported as INVALID

    def __init__(self) -> None:
        self._interest: dict[int, int] = {}
        self._watches: dict[tuple[int, int], _Watch] = {}
        self._events: dict[int, int] = {}
        self._reported: list[_Watch] = []
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._sleeper: Any = None
        self._wake_requested = False
        self._attached = False
        self._attached_pid = 0
        self._driving = False
        self._drive_stop_waiters: set[trio.Event] = set()
        self._in_asyncio = False
        self._saved_hooks: Any = None
        self._aio_agens: dict[int, weakref.ref[Any]] = {}
        self._aio_agens_purge_at = 64
        self._watches_started = 0
        self._wakeups = 0
        self._invalid = 0
        self._closed_before_run: set[int] = set()

    # ---------------------------------------------------------------------------------- registration
    def register(self, fd: int, events: int) -> None:
        _check_fd(fd)
        self._interest[fd] = events
        if self._attached:
            for d in _DIRECTIONS:
                if events & d:
                    self._start_watch(fd, d)

    def modify(self, fd: int, events: int) -> None:
        old = self._interest[fd]
        self._interest[fd] = events
        if self._attached:
            for d in _DIRECTIONS:
                if old & d and not events & d:
                    self._stop_watch(fd, d)
                elif events & d and not old & d:
                    self._start_watch(fd, d)

    def unregister(self, fd: int) -> None:
        old = self._interest.pop(fd)
        if self._attached:
            for d in _DIRECTIONS:
                if old & d:
                    self._stop_watch(fd, d)
        self._events.pop(fd, None)

    def close(self) -> None:
        if self._attached:
            if os.getpid() != self._attached_pid:
                # A forked child closing its copy: the watches are copies of the parent's trio tasks, and
                # cancelling one runs trio's abort callback, which updates the epoll/kqueue object the child
                # shares with the parent (it would delete the parent's registrations). Forget them instead.
                self._watches.clear()
                self._attached = False
                self._token = self._nursery = self._sleeper = None
                if current_poller() is self:
                    _local.poller = None
            else:
                self._detach()
        self._interest.clear()
        self._events.clear()

    def make_waker(self) -> Callable[[], None]:
        return self._threadsafe_wake

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """The blocking-poller interface, for completeness (the core uses ``drive``): one short trio.run."""
        if self._attached:
            raise RuntimeError("trio backend: poll() cannot be called while the poller is attached to trio")
        _refuse_inside_trio("poll()")
        return trio.run(self._poll_main, timeout)

    async def _poll_main(self, timeout: float | None) -> list[tuple[int, int]]:
        self._attach(None, None, None)
        try:
            # "Nothing is ready" may only be concluded once trio has looked at the kernel with every watch
            # registered. trio runs tasks in batches and consults its I/O manager before each batch; a task
            # it wakes runs in the next batch. So: wait until every watch has made its first call into
            # trio's wait (which registers the fd before it parks), then checkpoint twice: the first puts
            # us in the batch after an I/O check, together with the watches that check woke; the second
            # lets those run (and record readiness) before we look.
            while not all(w.armed for w in self._watches.values()):
                await tl.checkpoint()
            await tl.checkpoint()
            await tl.checkpoint()
            if not self._events and timeout != 0:
                await self._block(timeout)
            return self._take_events()[0]
        finally:
            self._detach()

    # ----------------------------------------------------------------------------------------- watches
    def _start_watch(self, fd: int, direction: int) -> None:
        w = _Watch(fd, direction)
        self._watches[fd, direction] = w
        self._watches_started += 1
        tl.spawn_system_task(self._watch, w, name=f"multiloop-trio watch fd {fd} "
                                                  f"{'read' if direction == READ else 'write'}")

    def _stop_watch(self, fd: int, direction: int) -> None:
        w = self._watches.pop((fd, direction), None)
        if w is not None:
            # Synchronous: if the task is parked in wait_readable/wait_writable, trio forgets the fd now.
            w.scope.cancel()
        pending = self._events.get(fd)
        if pending is not None:
            # Keep what the fd's other watch reported (its direction, or ERROR), drop what was ours.
            pending &= ~direction
            if pending and self._interest.get(fd, 0) & ~direction:
                self._events[fd] = pending
            else:
                del self._events[fd]

    @tl.enable_ki_protection
    async def _watch(self, w: _Watch) -> None:
        wait = tl.wait_readable if w.direction == READ else tl.wait_writable
        fd = w.fd
        with w.scope:
            while True:
                try:
                    w.armed = True
                    await wait(fd)
                    ev = w.direction
                except trio.BusyResourceError:
                    # Some trio task waits on the same fd and direction: it will consume the readiness.
                    logger.warning("multiloop-trio: another trio task is already waiting for fd %d to become "
                                   "%s; the asyncio callback will be called every loop pass", fd,
                                   "readable" if w.direction == READ else "writable")
                    ev = w.direction
                except OSError as exc:
                    if exc.errno == errno.EPERM:
                        # The kernel cannot watch this kind of file (/dev/null, character devices that
                        # fstat cannot tell apart at registration): always ready, as select() says.
                        ev = w.direction
                    else:
                        # EBADF: closed behind the loop's back. Waiting again would fail at once; the core
                        # drops the fd and reports it.
                        ev = INVALID
                        self._invalid += 1
                except trio.ClosedResourceError:
                    # notify_closing(): trio code is about to close the fd (still open now). Wake the
                    # callbacks so they meet what follows; the next wait finds it closed (EBADF, INVALID).
                    ev = ERROR
                except Exception:  # noqa: BLE001 - a system task must not raise; report, do not crash trio
                    logger.exception("multiloop-trio: unexpected error waiting for fd %d", fd)
                    ev = INVALID
                    self._invalid += 1
                if w.scope.cancel_called:
                    return  # unregistered while the result was in flight: stale
                self._events[fd] = self._events.get(fd, 0) | ev
                self._reported.append(w)
                self._wake()
                w.parked = tl.current_task()

                def abort(_: Any, w: _Watch = w) -> Any:
                    w.parked = None
                    return tl.Abort.SUCCEEDED

                await tl.wait_task_rescheduled(abort)

    def _rearm(self, reported: list[_Watch]) -> None:
        for w in reported:
            task = w.parked
            if task is not None:
                w.parked = None
                tl.reschedule(task)

    def _take_events(self) -> tuple[list[tuple[int, int]], list[_Watch]]:
        reported, self._reported = self._reported, []
        events = self._events
        if not events:
            return [], reported
        result = list(events.items())
        events.clear()
        return result, reported

    # ----------------------------------------------------------------------------------------- waking
    def _wake(self) -> None:
        """In the trio thread, from trio context: wake the task that is blocked in ``_block``."""
        task = self._sleeper
        if task is not None:
            self._sleeper = None
            tl.reschedule(task)

    def _threadsafe_wake(self) -> None:
        # Called by the core from any thread, or from a signal handler in the trio thread; run_sync_soon is
        # safe in both. Coalesced: one request in flight at a time.
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
        """``registered``: fds watched; ``watch_tasks``: trio tasks waiting now (one per fd and direction,
        while attached to a run); ``watch_tasks_started``: since creation; ``threadsafe_wakeups``: waits
        ended through the trio token (call_soon_threadsafe, signals); ``invalid_fds``: waits that failed
        (fd closed behind the loop's back), reported to the core as INVALID."""
        return {"registered": len(self._interest), "watch_tasks": len(self._watches),
                "watch_tasks_started": self._watches_started, "threadsafe_wakeups": self._wakeups,
                "invalid_fds": self._invalid}

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
        """Bind to the current trio run: start watches, route async generator hooks, become findable."""
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
            self._saved_hooks = sys.get_asyncgen_hooks()
            self._install_asyncgen_hooks(aio_hooks, trio_hooks)
        closed, self._closed_before_run = self._closed_before_run, set()
        for fd, mask in self._interest.items():
            if fd in closed:  # see drive(): INVALID at the first pass, no watch on whatever has the number now
                self._events[fd] = INVALID
                self._invalid += 1
                continue
            for d in _DIRECTIONS:
                if mask & d:
                    self._start_watch(fd, d)

    def _detach(self) -> None:
        for w in self._watches.values():
            w.scope.cancel()
        self._watches.clear()
        self._events.clear()
        self._reported = []
        self._sleeper = None
        self._notify_drive_stopped()
        if self._saved_hooks is not None:
            sys.set_asyncgen_hooks(*self._saved_hooks)
            self._saved_hooks = None
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
        self._driving = True
        try:
            while True:
                timeout = timeout_of()
                if timeout == 0 or self._events:
                    await tl.checkpoint()
                else:
                    await self._block(timeout)
                events, reported = self._take_events()
                outer_library, thread_local.name = thread_local.name, "asyncio"
                self._in_asyncio = True
                try:
                    go_on = dispatch(events)
                finally:
                    self._in_asyncio = False
                    thread_local.name = outer_library
                    if reported:
                        self._rearm(reported)
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
        """``loop.run_forever()``: one ``trio.run`` whose main task runs the passes until the loop stops."""
        _refuse_inside_trio("run_forever()/run_until_complete()")
        aio_hooks = sys.get_asyncgen_hooks()  # the loop's, installed by enter_running()
        # trio.run opens files of its own (its epoll fd, its wake-up sockets), which take the lowest free
        # numbers: an fd closed since the last run with its registration left would get one, and its watch
        # would watch trio's file (a wake-up socket is always writable: a spin, nothing reported). Find those
        # now, while the numbers are still free (one fstat per registered fd per run, not per pass).
        self._closed_before_run = {fd for fd in self._interest if not _is_open(fd)}
        wakeup = _WakeupFdHandover()
        try:
            trio.run(self._drive_main, iteration, aio_hooks, wakeup)
        finally:
            wakeup.after_run()

    async def _drive_main(self, iteration: Iteration, aio_hooks: Any, wakeup: _WakeupFdHandover) -> None:
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

    # ------------------------------------------------------------------------ async generator routing
    def _install_asyncgen_hooks(self, aio_hooks: Any, trio_hooks: Any) -> None:
        aio_first, aio_final = aio_hooks
        trio_first, trio_final = trio_hooks
        agens = self._aio_agens

        def firstiter(agen: Any) -> None:
            if self._in_asyncio:
                # ids, because the finalizer runs after the generator's weak references are cleared
                agens[id(agen)] = weakref.ref(agen)
                if len(agens) > self._aio_agens_purge_at:
                    self._purge_agens()
                if aio_first is not None:
                    aio_first(agen)
            elif trio_first is not None:
                trio_first(agen)

        def finalizer(agen: Any) -> None:
            if agens.pop(id(agen), None) is not None:
                if aio_final is not None:
                    aio_final(agen)
            elif trio_final is not None:
                trio_final(agen)

        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)

    def _purge_agens(self) -> None:
        # Generators that ran to completion are never finalized; forget the dead ones.
        agens = self._aio_agens
        for key in [k for k, ref in agens.items() if ref() is None]:
            del agens[key]
        self._aio_agens_purge_at = max(64, 2 * len(agens))


class _WakeupFdHandover:
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


def _refuse_inside_trio(what: str) -> None:
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
