"""The loop core: scheduling, timers, the fd table, running and stopping. Shared by every backend.

One pass of the loop (``_run_once``) is: compute how long the backend may block, wait (the backend's only
job), turn ready fds into their reader/writer handles, move due timers to the ready queue, run the ready
callbacks that were queued before this pass began. The order of callbacks is stock asyncio's, so code that
depends on it (transports queue ``connection_made`` before their first read) behaves the same.

Where it is faster than stock asyncio, and why:
- No selectors layer: the poller returns ``(fd, events)`` and the fd table maps fd -> handles directly.
- Timers live in the heap as ``(when, seq, handle)`` tuples, compared in C, not through
  ``TimerHandle.__lt__`` (a Python call per comparison). ``seq`` also makes equal deadlines FIFO.
- ``call_soon_threadsafe`` writes to the wake-up fd only when the loop is (about to be) blocked in the
  backend, and once per block, instead of on every call.
- Callback validity checks cost one type test for the common callback types.

Compiled (Cython, from this same file; :mod:`multiloop.compiled`): the scheduler state lives in C fields of
``_CoreState`` (declared in ``core.pxd``), the hot methods see ``self`` as that type, and plain handles are built
and run inline (``_fasthandles.pxd``: asyncio.Handle's slots at their offsets, context entered with the C API)
instead of calling ``Handle.__init__``/``Handle._run``; an exception in such a callback is reported exactly as
``Handle._run`` reports it (:mod:`multiloop._callback_report`). Every ``if cython.compiled:`` branch below has
its pure-Python twin next to it; both are tested.

Threads (free-threaded 3.14t/3.15t make every race real; tests/test_thread_safety.py checks these):
- Only ``call_soon_threadsafe`` (and cancelling the handle it returns) may be called from other threads, as
  in asyncio. It appends to the ready deque (one atomic operation: a per-object lock on free-threaded
  builds), then reads ``_may_block``, which the loop sets *before* its last look at the deque: either the
  loop sees the callback, or the caller sees the flag and wakes it (:mod:`multiloop.wakeup`).
- Everything else (the timer heap, ``_timer_cancelled_count``, the stats counters, the fd table) is touched
  by the loop's thread only, so needs no lock. ``TimerHandle.cancel`` from another thread is as unsupported
  as with stock asyncio (a miscount would only delay the heap's clean-up).
- Process-wide state is thread-safe on its own: the backend registry is built once under a lock, the
  callback-type cache and the live-loop WeakSet are sets (atomic add, discard and contains).

This module has no networking, subprocess or signal code: those are mixins in their own modules, composed in
:mod:`multiloop.loop`. What they may use of the core is declared in :mod:`multiloop.seams`; the fd table is a
collaborator (:class:`multiloop.fdtable.FdTable`, ``self._fdtable``) whose containers the dispatch reads
directly.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import errno
import heapq
import logging
import operator
import os
import sys
import threading
import time
import types
import warnings
import weakref
from asyncio import events as _aio_events
from asyncio import tasks as _aio_tasks
from collections.abc import Callable, Iterator
from typing import Any, TypeVarTuple, Unpack, cast

try:
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # running as plain Python without Cython installed
    from . import _cython_shim as cython  # type: ignore[no-redef, unused-ignore]

from . import _threadsafe_handle as _ts
from . import errors
from ._callback_report import report_callback_error as _report_callback_error
from ._threadsafe_handle import ThreadSafeHandle as _ThreadSafeHandle
from .backend import ERROR, INVALID, READ, WRITE, Iteration, Poller
from .callbacks import CORO_FLAGS, PLAIN_CALLABLES
from .callbacks import check_callback as _check_callback
from .callbacks import checked_function as _plain_function
from .fdtable import FdEntry, FdTable
from .instruments import InstrumentSet
from .readiness import NativeWait, ReadinessSink
from .services import LoopServices
from .stats import LoopStats
from .timerheap import TimerHeap
from .timings import TimingsRecorder
from .wakeup import Waker

logger = logging.getLogger("asyncio")

# epoll_wait()/select() cannot take arbitrarily large timeouts; no timer is that far away in practice.
MAX_TIMEOUT = cython.declare(cython.double, 24 * 3600.0)
_NO_EVENTS: list[tuple[int, int]] = cython.declare(list, [])  # never appended to
# What _compute_timeout returns when nothing is scheduled (the backend is then given None: no deadline).
_NO_DEADLINE = cython.declare(cython.double, -1.0)
# Rebuild the timer heap when more than half of at least this many entries are cancelled.
_MIN_TIMERS_FOR_CLEANUP = cython.declare(cython.Py_ssize_t, 100)
# The shared read buffer (see seams.LoopSeams._read_buffer): one recv_into of this size takes what stock
# asyncio's recv(256 KiB) takes, without allocating.
READ_BUFFER_SIZE = 256 * 1024
# Module globals the hot path reads are C variables when compiled (``cython.declare``): a Python-level global
# costs a dictionary lookup per read on Python 3.12+ (~140 instructions: Cython's cache keyed on dict versions
# is gone there), and an int one also unboxing (``flags & _CORO_FLAGS`` a boxed ``&`` and a truth test, ~100
# instructions per call_soon, on every Python). A C global is one load. In plain Python they are ordinary
# globals. The event bits and the coroutine flags:
_EV_READ = cython.declare(cython.long, READ)
_EV_WRITE = cython.declare(cython.long, WRITE)
_EV_INVALID = cython.declare(cython.long, INVALID)
# Events that are not plain readiness: one test per event on the hot path covers both.
_ERROR_OR_INVALID = cython.declare(cython.long, ERROR | INVALID)
_CORO_FLAGS = cython.declare(cython.long, CORO_FLAGS)
# Every 2**_AUDIT_SHIFT passes that report fds, check that (a few of) them are still open: see _audit.
_AUDIT_SHIFT = 8
_AUDIT_MASK = cython.declare(cython.long, (1 << _AUDIT_SHIFT) - 1)
_AUDIT_FDS = 4

_Handle = cython.declare(object, asyncio.Handle)
_FunctionType = cython.declare(object, types.FunctionType)
_PLAIN_CALLABLES = cython.declare(object, PLAIN_CALLABLES)
_TimerHandle = cython.declare(object, asyncio.TimerHandle)
_new_object = object.__new__
_copy_context = contextvars.copy_context
# Context.run unbound: the pure pass calls it with the handle's context as first argument. ``ctx.run`` made a
# bound method per callback through a generic attribute lookup (~330 instructions of a ~7,100-instruction
# call_soon + run on 3.14). Like the compiled pass (PyContext_Enter), it takes only a real Context.
_context_run = contextvars.Context.run
_monotonic = cython.declare(object, time.monotonic)
_Future = cython.declare(object, asyncio.Future)
_tasks_module = cython.declare(object, _aio_tasks)
# call_soon_threadsafe's handle class, for the pass's "is it one?" test.
_TS_CLASS = cython.declare(object, _ThreadSafeHandle)
_heappush = heapq.heappush
_heappop = heapq.heappop
_get_ident = threading.get_ident
_Ts = TypeVarTuple("_Ts")
# Compiled: whether asyncio's handles have the slots _fasthandles.pxd expects (else the Python-level paths run).
_FAST = cython.declare(cython.bint, cython.compiled and ml_init_handles(_Handle, _TimerHandle))  # type: ignore[name-defined]  # noqa: F821
# Compiled: the ready deque's append/popleft called as C functions (ml_deque_append: see _fasthandles.pxd).
# _ready is a deque made in __init__ and never rebound (see compiled.py's free-threading notes).
_FAST_DEQUE = cython.declare(cython.bint, cython.compiled and ml_init_deque(collections.deque))  # type: ignore[name-defined]  # noqa: F821
# Compiled: whether call_soon_threadsafe's handle class has the _lock and _runner slots _fasthandles.pxd expects.
_FAST_TS = cython.declare(cython.bint, _FAST and ml_init_threadsafe(_ThreadSafeHandle))  # type: ignore[name-defined]  # noqa: F821
# Compiled, GIL builds: call_soon_threadsafe's handles wait in the ready queue untracked by the cyclic collector
# while the compiled pass runs (ml_gc_untrack in _fasthandles.pxd says why and why it is safe).
_UNTRACK_TS = cython.declare(cython.bint, _FAST_TS and _FAST_DEQUE and not ML_GIL_DISABLED)  # type: ignore[name-defined]  # noqa: F821
# The threadsafe handles' transition lock (see _threadsafe_handle), the flag its cancellers raise inside it, and
# the runner's end value, kept here so _run_threadsafe reads module globals, not attributes of another module, per handle.
# The lock is replaced in a forked child: _after_fork_in_child reads it again (that module's own at-fork
# hook, registered when it was imported, before this module's, has run by then).
_transition = cython.declare(object, _ts._transition)
_canceller_inside = cython.declare(list, _ts.CANCELLER_INSIDE)
_TS_DONE = cython.declare(object, _ts._DONE)
# Compiled: how the runner takes the transition lock (ml_init_lock in _fasthandles.pxd): 2, as the PyMutex inside
# it (free-threaded builds, its layout checked); 1, its acquire/release as C functions; 0, by name. A lock made
# after fork() is of the same type. tests/test_threadsafe_handle.py checks which one each build gets.
TRANSITION_LOCK_PATH = ml_init_lock(_transition) if cython.compiled else 0  # type: ignore[name-defined]  # noqa: F821

# The pure build's loader copies these methods' bodies into their callers in this module (``self.m(...)`` as a
# statement or ``x = self.m(...)``): a pass is then one Python frame, not four (see multiloop._pure_inliner:
# ~10% of an fd round trip). The compiled build calls them as C functions and ignores this.
_INLINE_WHEN_PURE = ("_compute_timeout", "_run_once", "_process")

#: For the purge of cancelled timers: a C-level test per timer (a Python function here measured slower).
_is_cancelled = operator.attrgetter("_cancelled")

def _asyncio_debug_default() -> bool:
    # Same rule as asyncio.coroutines._is_debug_mode, which is private.
    return sys.flags.dev_mode or (not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG")))


# Loops alive in this process, so a fork() can mark them unusable in the child.
_live_loops: weakref.WeakSet[LoopCore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _transition
    _transition = _ts._transition
    for loop in list(_live_loops):
        loop._forked = True
        loop._fdtable.forked = True
        loop._waker.after_fork_in_child()
        loop._forget_executor_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _CoreState(ReadinessSink):
    """The scheduler's state and its pass. Compiled, an extension type whose C fields ``core.pxd`` declares,
    and whose pass methods are C functions calling each other directly (as methods of the Python subclass
    they cost an attribute lookup and a Python call each, four times a pass); as plain Python, a base class
    holding the pass. The pass reaches what only LoopCore has (``_fdtable``, ``_audit``, ...) as attributes."""

    # ----------------------------------------------------------------------------------- one loop pass
    @cython.locals(scheduled=TimerHeap, timeout=cython.double)
    def _compute_timeout(self: LoopCore) -> float:
        """How long the backend may block, in seconds; ``_NO_DEADLINE`` (negative) when nothing is scheduled.
        Also publishes "may block" for call_soon_threadsafe first, so a callback appended from another thread
        after this point is either seen here or wakes the wait.

        A C double, not ``float | None``: compiled, the pass then tests it without a boxed comparison and
        boxes it once, for the backend (see _run_once)."""
        self._may_block = True
        if cython.compiled:
            # Free-threaded builds: the flag's store must be visible before we look at the ready queue (a
            # producer appends, then reads the flag; see call_soon_threadsafe). With a GIL: nothing.
            ml_fence()  # type: ignore[name-defined]  # noqa: F821
        if cython.compiled:
            if ml_len(self._ready) or self._stopping or self._always_ready:  # type: ignore[name-defined]  # noqa: F821
                return 0.0
        elif self._ready or self._stopping or self._always_ready:
            return 0.0
        scheduled = self._scheduled
        # Cancelled timers at the head go now: the wait must not end early for them.
        if cython.compiled:
            if _FAST:
                while ml_len(scheduled) and ml_cancelled(scheduled.first()):  # type: ignore[name-defined]  # noqa: F821
                    self._timer_cancelled_count -= 1
                    ml_set(scheduled.pop(), ML_SCHEDULED, False)  # type: ignore[name-defined]  # noqa: F821
            else:
                while ml_len(scheduled) and scheduled.first()._cancelled:  # type: ignore[name-defined]  # noqa: F821
                    self._timer_cancelled_count -= 1
                    scheduled.pop()._scheduled = False
            if not ml_len(scheduled):  # type: ignore[name-defined]  # noqa: F821
                return _NO_DEADLINE
            # The clock as a C call (multiloop/_clock.pxd), twice a pass while a timer is pending.
            timeout = scheduled.first_when() - ml_monotonic()  # type: ignore[name-defined]  # noqa: F821
        else:
            # The pure-Python heap, inline (a list of (when, seq, timer): see _process).
            while scheduled and scheduled[0][2]._cancelled:
                self._timer_cancelled_count -= 1
                _heappop(scheduled)[2]._scheduled = False
            if not scheduled:
                return _NO_DEADLINE
            timeout = scheduled[0][0] - _monotonic()
        if timeout <= 0.0:
            return 0.0
        return timeout if timeout < MAX_TIMEOUT else MAX_TIMEOUT

    @cython.locals(timeout=cython.double, native=NativeWait, n=cython.Py_ssize_t)
    def _run_once(self: Any) -> None:  # a LoopCore (mypy takes no subclass as the self type of an undecorated method)
        timeout = self._compute_timeout()
        # Instruments or timings attached: the wait hooks go around the wait. One local test each side,
        # not a second copy of the pass, and no extra call on the plain path.
        instruments: Any = self._instruments
        if timeout == 0.0 and len(self._fds) == self._waker_fd_count:
            # Nothing to wait for but the wake-up fd, and we are not going to block: the cross-thread
            # callbacks it would announce are in the ready queue already. Skip the syscall.
            if instruments is not None:
                instruments.before_io_wait(timeout)
                instruments.after_io_wait()
            self._process(_NO_EVENTS)
            return
        native = self._native
        if native is not None and native.active and instruments is None and (self._n_passes + 1) & _AUDIT_MASK \
                and not self._always_ready:
            # The backend hands each event to _on_ready from C (multiloop.readiness): no list, no tuples.
            # Not on the passes that audit the reported fds, which need them as a list, nor with hooks.
            try:
                n = native.wait_into(self, timeout)
            finally:
                self._may_block = False
            self._n_events += n
            if self._stale_fds:
                self._discard_stale()
            self._process(_NO_EVENTS)
            return
        wait = None if timeout < 0.0 else timeout  # what poll() takes: seconds, or None for no deadline
        if instruments is not None:
            instruments.before_io_wait(wait)
        try:
            events = self._poller.poll(wait)
        finally:
            self._may_block = False
        if instruments is not None:
            instruments.after_io_wait()
        self._process(events)

    @cython.locals(scheduled=TimerHeap, ntodo=cython.Py_ssize_t, _=cython.Py_ssize_t,
                   end=cython.double, n_timers=cython.Py_ssize_t, cancelled=cython.bint,
                   fd=cython.int, ev=cython.long, entry=FdEntry)
    def _process(self: LoopCore, events: list[tuple[int, int]]) -> None:
        self._may_block = False
        self._n_passes += 1
        append = self._ready_append
        # _NO_EVENTS (the native wait's passes) by identity: a truth test is a generic call. The events are
        # handled here, not in a method of their own: the pure build would pay a Python call per pass for it.
        if (events is not _NO_EVENTS and events) or self._always_ready:
            self._n_events += len(events)
            if not self._n_passes & _AUDIT_MASK:  # a C constant when compiled: this runs on every pass
                events = self._audit(events, self._n_passes >> _AUDIT_SHIFT)
            fds = self._fds
            if cython.compiled:
                for fd, ev in events:
                    self._on_ready(fd, ev)
            else:
                for fd, ev in events:
                    # The usual event, a readable fd with a live reader, inline: a Python call per event is
                    # ~2% of an fd round trip in this build. _on_ready takes everything else.
                    entry = fds.get(fd)
                    if ev == _EV_READ and entry is not None:
                        handle = entry.reader
                        if handle is not None and not handle._cancelled:
                            append(handle)
                            continue
                    self._on_ready(fd, ev)
            if self._stale_fds:
                self._discard_stale()
            if self._always_ready:  # almost always empty: a size test, not an iterator, per pass
                for fd in self._always_ready:
                    entry = fds[fd]
                    if entry.reader is not None and not entry.reader._cancelled:
                        append(entry.reader)
                    if entry.writer is not None and not entry.writer._cancelled:
                        append(entry.writer)
        # Due timers. The clock resolution slack stops a timer due "now" from needing another pass.
        scheduled = self._scheduled
        # Compiled, len() of the heap through its type slot (ml_len): Cython's len() of an extension type is
        # PyObject_Length's generic path.
        n_timers = ml_len(scheduled) if cython.compiled else len(scheduled)  # type: ignore[name-defined]  # noqa: F821
        if n_timers:
            if self._timer_cancelled_count > _MIN_TIMERS_FOR_CLEANUP and \
                    self._timer_cancelled_count * 2 > n_timers:
                self._purge_cancelled_timers()
            end = (ml_monotonic() if cython.compiled else _monotonic()) + self._clock_resolution  # type: ignore[name-defined]  # noqa: F821
            while True:
                if cython.compiled:
                    handle = scheduled.pop_due(end)
                    if handle is None:
                        break
                else:
                    # The pure-Python heap is a list of (when, seq, timer) (timerheap._ListTimerHeap): used
                    # inline, as a method call per timer cost the pure build 10% on the timers benchmark.
                    if not scheduled or scheduled[0][0] >= end:
                        break
                    handle = _heappop(scheduled)[2]
                if cython.compiled and _FAST:
                    ml_set(handle, ML_SCHEDULED, False)  # type: ignore[name-defined]  # noqa: F821
                    cancelled = ml_cancelled(handle)  # type: ignore[name-defined]  # noqa: F821
                else:
                    handle._scheduled = False
                    cancelled = handle._cancelled
                if cancelled:
                    self._timer_cancelled_count -= 1
                elif _FAST_DEQUE:
                    ml_deque_append(self._ready, handle)  # type: ignore[name-defined]  # noqa: F821
                else:
                    append(handle)
        # Run what was ready before this pass; callbacks they schedule wait for the next pass.
        ntodo = ml_len(self._ready) if cython.compiled else len(self._ready)  # type: ignore[name-defined]  # noqa: F821
        self._n_callbacks += ntodo
        popleft = self._ready_popleft
        if self._hooked_pass:  # debug mode or instruments: one test for both (see _update_hooked_pass)
            if self._instruments is not None:
                # The instrumented pass (multiloop.instruments): the same loop, hooks around each callback.
                self._instruments.run_ready(ntodo, popleft, self._run_handle_debug if self._debug else None)
            else:
                for _ in range(ntodo):
                    handle = popleft()
                    if not handle._cancelled:
                        self._run_handle_debug(handle)
        elif cython.compiled and _FAST:
            ready = self._ready
            for _ in range(ntodo):
                handle = ml_deque_popleft(ready) if _FAST_DEQUE else popleft()  # type: ignore[name-defined]  # noqa: F821
                if ml_is_plain(handle):  # type: ignore[name-defined]  # noqa: F821
                    # Handle._run without the method call: same context, same report on failure.
                    if ml_cancelled(handle):  # type: ignore[name-defined]  # noqa: F821
                        ml_recycle(handle)  # type: ignore[name-defined]  # noqa: F821
                        continue
                    try:
                        ml_run(handle)  # type: ignore[name-defined]  # noqa: F821
                        # Kept for the next call_soon if nothing else holds it (see _fasthandles.pxd).
                        ml_recycle(handle)  # type: ignore[name-defined]  # noqa: F821
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        _report_callback_error(handle, exc)
                elif type(handle) is _TS_CLASS:  # a C test (.__class__ is a generic getattr)
                    if _UNTRACK_TS:
                        ml_gc_retrack(handle)  # type: ignore[name-defined]  # noqa: F821  # see _UNTRACK_TS
                    _run_threadsafe(handle)  # its _run, with the callback run inline
                    if _FAST_TS:
                        ml_ts_recycle(handle)  # type: ignore[name-defined]  # noqa: F821
                elif not handle._cancelled:
                    handle._run()  # another class: its own _run
        else:
            for _ in range(ntodo):
                handle = popleft()
                if handle._cancelled:
                    continue
                tp = type(handle)
                if tp is _Handle or tp is _TimerHandle:
                    # Handle._run without its frame (~5% of a callback in the pure build on 3.14): the same
                    # call, the same report on failure (see the compiled branch and _report_callback_error).
                    try:
                        _context_run(handle._context, handle._callback, *handle._args)  # type: ignore[attr-defined]
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        _report_callback_error(handle, exc)
                else:
                    handle._run()
        # Drop the references before blocking again (ResourceWarning-friendly); the pure build inlines this
        # method into run_forever, whose frame would otherwise keep them through the wait.
        handle = None
        entry = None
        if not cython.compiled:
            self._checked_function = None  # see LoopCore.__init__

    @cython.locals(entry=FdEntry)
    def _on_ready(self: LoopCore, fd: int, ev: int) -> int:
        """One event of a wait: the fd's reader and/or writer join the ready queue. Compiled, a C method that a
        backend's native wait calls directly (see :mod:`multiloop.readiness`); ``_process`` calls it too."""
        entry = self._fdtable.entry_of(fd) if cython.compiled else self._fds.get(fd)
        if entry is None:
            # A kernel registration the core no longer has (epoll after dup()+close()): left alone, a
            # level-triggered wait would report it forever. The backend gets rid of it, once per batch.
            self._stale_fds.append(fd)
            return 0
        if ev & _ERROR_OR_INVALID:
            if ev & _EV_INVALID:
                self._drop_dead_fd(fd, entry)
                return 0
            ev = entry.mask
        if ev & _EV_READ:
            handle = entry.reader
            if handle is not None:
                if ml_cancelled(handle) if cython.compiled else handle._cancelled:  # type: ignore[name-defined]  # noqa: F821
                    self._fdtable.remove_reader(fd)
                elif _FAST_DEQUE:
                    ml_deque_append(self._ready, handle)  # type: ignore[name-defined]  # noqa: F821
                else:
                    self._ready_append(handle)
        if ev & _EV_WRITE:
            handle = entry.writer
            if handle is not None:
                if ml_cancelled(handle) if cython.compiled else handle._cancelled:  # type: ignore[name-defined]  # noqa: F821
                    self._fdtable.remove_writer(fd)
                elif _FAST_DEQUE:
                    ml_deque_append(self._ready, handle)  # type: ignore[name-defined]  # noqa: F821
                else:
                    self._ready_append(handle)
        return 0

    @cython.locals(tp=object)  # decorated: mypy then takes LoopCore as the self type
    def _new_timer(self: LoopCore, when: float, callback: Callable[..., object], args: tuple[Any, ...],
                   context: contextvars.Context | None) -> asyncio.TimerHandle:
        """call_at's body, shared with call_later without re-packing its arguments (timers are hot). Compiled, a
        C method (core.pxd): called as a Python method it cost call_later a lookup, an argument parse and a type
        test of ``self`` along the loop class's MRO (~450 instructions a timer on 3.14t)."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        tp = type(callback)
        if tp is _FunctionType:
            if cython.compiled:
                if ml_code_flags(callback) & _CORO_FLAGS:  # type: ignore[name-defined]  # noqa: F821
                    _check_callback(callback, "call_at")  # stock asyncio names call_at for call_later too
            elif callback is not self._checked_function:  # pure build: see _checked_function
                self._checked_function = _plain_function(callback, "call_at")
        elif tp not in _PLAIN_CALLABLES:
            _check_callback(callback, "call_at")
        timer: Any  # the private _source_traceback, _when and _scheduled slots are used
        if self._debug:
            self._check_thread()
            timer = _TimerHandle(when, callback, args, self, context)
            if timer._source_traceback and not cython.compiled:
                # Drop this frame and the call_at/call_later frame: the traceback starts at the caller.
                del timer._source_traceback[-2:]
        elif cython.compiled and _FAST:
            timer = ml_new(_TimerHandle, callback, args, self, context, when)  # type: ignore[name-defined]  # noqa: F821
        else:
            timer = _new_object(_TimerHandle)  # call_soon's construction, plus the deadline (see there)
            timer._callback = callback
            timer._args = args
            timer._cancelled = False
            timer._loop = self
            timer._repr = None
            timer._source_traceback = None
            timer._context = _copy_context() if context is None else context
            timer._when = when
        if cython.compiled:
            self._scheduled.push(when, timer)
        else:
            _heappush(self._scheduled, (when, self._scheduled.next_seq(), timer))  # inline: see _process
        if cython.compiled and _FAST:
            ml_set(timer, ML_SCHEDULED, True)  # type: ignore[name-defined]  # noqa: F821
        else:
            timer._scheduled = True
        if self._may_block:
            self._waker.wake()  # the wait's deadline may now be too late (see call_soon)
        return timer


class _CoreIteration(Iteration):
    """The core's half of a driving backend's loop (see :class:`multiloop.backend.Iteration`)."""

    __slots__ = ("_loop",)

    def __init__(self, loop: LoopCore) -> None:
        self._loop = loop

    @cython.locals(loop=_CoreState, seconds=cython.double)
    def timeout(self) -> float | None:
        loop = self._loop
        seconds = loop._compute_timeout()
        timeout = None if seconds < 0.0 else seconds
        if loop._instruments is not None:
            loop._instruments.before_io_wait(timeout)
        return timeout

    @cython.locals(loop=_CoreState)
    def dispatch(self, events: list[tuple[int, int]]) -> bool:
        loop = self._loop
        if loop._instruments is not None:
            loop._instruments.after_io_wait()
        loop._process(events)
        return not loop._stopping


@cython.locals(take=cython.bint)
def _run_threadsafe(handle: Any) -> None:
    """``ThreadSafeHandle._run`` (the same protocol: see :mod:`multiloop._threadsafe_handle`), compiled, with the
    callback run as plain handles are (``ml_run``). Only the compiled pass calls it (a C function: ``core.pxd``).

    With the GIL, this C code cannot be interrupted between the Python-level calls it makes; so when no
    canceller has raised ``CANCELLER_INSIDE``, none is inside its critical section and none can enter one
    before this section ends: the section needs no lock then. Free-threaded builds always take it."""
    transition = _transition
    take = ML_GIL_DISABLED or _canceller_inside[0] is True  # type: ignore[name-defined]  # noqa: F821
    if take:
        ml_lock_acquire(transition)  # type: ignore[name-defined]  # noqa: F821
    cancelled = ml_cancelled_slot(handle)  # type: ignore[name-defined]  # noqa: F821
    if not cancelled:
        if _FAST_TS:
            ml_ts_set_runner_here(handle)  # type: ignore[name-defined]  # noqa: F821
        else:
            handle._runner = _get_ident()
    if take:
        ml_lock_release(transition)  # type: ignore[name-defined]  # noqa: F821
    if cancelled:
        return
    try:
        ml_run_threadsafe(handle)  # type: ignore[name-defined]  # noqa: F821
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        _report_callback_error(handle, exc)
    finally:
        take = ML_GIL_DISABLED or _canceller_inside[0] is True  # type: ignore[name-defined]  # noqa: F821
        if take:
            ml_lock_acquire(transition)  # type: ignore[name-defined]  # noqa: F821
        if _FAST_TS:
            ml_ts_set_runner(handle, _TS_DONE)  # type: ignore[name-defined]  # noqa: F821
            waiter = ml_ts_get_lock(handle)  # type: ignore[name-defined]  # noqa: F821
        else:
            handle._runner = _TS_DONE
            waiter = handle._lock
        if take:
            ml_lock_release(transition)  # type: ignore[name-defined]  # noqa: F821
        if waiter is not None:
            waiter.release()


if not cython.compiled:
    # Plain Python: the same fields as slots. A loop has ~40 attributes, more than CPython (3.11+) keeps in an
    # object's inline values (30), so its instance dict is materialised and every self._x on the hot path is a
    # hinted dict lookup (LOAD_ATTR_WITH_HINT) instead of a fixed-offset load: measured on 3.14, that alone put
    # call_soon at 0.94x stock asyncio (whose loop has 27). tests/test_compiled.py checks the names match core.pxd.
    # The class is remade with the same namespace (its docstring and the pass) plus the slots.
    _CoreState = type("_CoreState", _CoreState.__bases__, {  # type: ignore[misc, assignment]  # noqa: F811
        **{k: v for k, v in vars(_CoreState).items() if k not in ("__dict__", "__weakref__")},
        "__slots__": ("_ready", "_ready_append", "_ready_popleft", "_scheduled",
                      "_timer_cancelled_count", "_fds", "_always_ready", "_fdtable", "_poller", "_waker",
                      "_waker_fd_count", "_closed", "_stopping", "_forked", "_may_block", "_debug",
                      "_clock_resolution", "_current_handle", "_n_passes", "_n_callbacks", "_n_events",
                      "_n_dead", "_n_stale", "_instruments", "_hooked_pass", "_untrack_posts", "_native",
                      "_stale_fds", "_checked_function"),
    })


class LoopCore(_CoreState, LoopServices):
    """Everything in ``asyncio.AbstractEventLoop`` that is not networking, pipes, subprocesses or signals."""

    def __init__(self, poller: Poller) -> None:
        self._poller = poller
        self._backend_name: str = getattr(poller, "name", type(poller).__name__)
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._ready_append = self._ready.append
        self._ready_popleft = self._ready.popleft
        # TimerHandles, typed Any: the core uses their private slots (see call_soon).
        self._scheduled: Any = TimerHeap()  # Any: the two builds' heaps differ (see timerheap)
        self._timer_cancelled_count = 0
        self._fdtable = FdTable(self, poller, self._backend_name, self._check_closed)
        # The table's containers, never rebound: read on every pass without an attribute hop.
        self._fds = self._fdtable.entries
        self._always_ready = self._fdtable.always_ready  # fds the kernel cannot watch (regular files on epoll)
        self._read_view: memoryview | None = None
        self._closed = False
        self._stopping = False
        self._forked = False
        self._pid = os.getpid()
        self._thread_id: int | None = None
        self._clock_resolution = time.get_clock_info("monotonic").resolution
        self._task_factory: Callable[..., Any] | None = None
        self._init_services()
        self._debug = _asyncio_debug_default()
        self._hooked_pass = self._debug
        self._untrack_posts = False  # see _UNTRACK_TS: True only inside run_forever's compiled pass loop
        # Pure build: the last plain function that call_soon/call_at/call_soon_threadsafe found not to be a
        # coroutine function. Reading __code__.co_flags is two generic attribute reads (~35 ns on 3.11 and 3.14,
        # 5% of a callback's whole cost); a callback that schedules itself again, the common case, then costs
        # one identity test. Dropped at the end of every pass and by close(): a function outlives its handle
        # (cancelled, or run) by at most the rest of the pass. The compiled build reads the flags in C and never sets it.
        self._checked_function: Any = None
        self.slow_callback_duration = 0.1
        self._current_handle: asyncio.Handle | None = None
        self._may_block = False
        # The instrument set while instruments or timings are attached, else None: the pass tests this once
        # (never per callback) and runs its plain code when it is None (see add_instrument).
        self._instruments: InstrumentSet | None = None
        self._instrument_set: InstrumentSet | None = None
        # Counters for stats(). Compiled, C integers (a list of Python ints allocated a new int per update once
        # past 256: three allocations per pass).
        self._n_passes = 0
        self._n_callbacks = 0
        self._n_events = 0  # fd events dispatched
        self._n_dead = 0  # dead fds dropped
        self._n_stale = 0  # events for fds the core does not know
        self._stale_fds: list[int] = []  # fds of this batch the core does not know (see _on_ready)
        # The backend's native wait, when it has one and this build can use it (see multiloop.readiness).
        native = getattr(poller, "native_wait", None)
        self._native = native if cython.compiled and isinstance(native, NativeWait) else None
        self._iteration = _CoreIteration(self)
        self._waker = Waker(self._fdtable, poller.make_waker())
        self._waker_fd_count = self._waker.fd_count
        _live_loops.add(self)

    # ------------------------------------------------------------------------------------------ identity
    @property
    def backend(self) -> str:
        """The name of the backend this loop waits with."""
        return self._backend_name

    def __repr__(self) -> str:
        return (f"<{type(self).__module__}.{type(self).__qualname__} backend={self._backend_name} "
                f"running={self.is_running()} closed={self._closed} debug={self._debug}>")

    def stats(self) -> LoopStats:
        """A snapshot of counters for observability (cheap: no per-event cost to keep them), with the
        backend's own counters (``Poller.statistics()``) in ``backend_stats``."""
        return LoopStats(backend=self._backend_name, iterations=self._n_passes, callbacks=self._n_callbacks,
                         fd_events=self._n_events,
                         ready=len(self._ready), timers=len(self._scheduled) - self._timer_cancelled_count,
                         cancelled_timers=self._timer_cancelled_count, fds=len(self._fds),
                         always_ready_fds=len(self._always_ready), dead_fds=self._n_dead,
                         stale_fd_events=self._n_stale,
                         timings=self._timings.snapshot() if self._timings is not None else None,
                         backend_stats=LoopStats.freeze(self._poller.statistics()))

    # ----------------------------------------------------------------------------------------- instruments
    def add_instrument(self, instrument: object) -> None:
        """Attach ``instrument``: an object with any of the methods of :class:`multiloop.Instrument`
        (``before_io_wait``, ``after_io_wait``, ``before_callback``, ``after_callback``, ``slow_callback``,
        ``task_spawned``, ``task_exited``); only those it defines are called. Adding one already attached
        does nothing. An instrument that raises is removed and reported through the exception handler.
        Like every loop method but ``call_soon_threadsafe``: from the loop's thread, or while it is not running."""
        self._instrument_hub().add(instrument)

    def remove_instrument(self, instrument: object) -> None:
        """Detach ``instrument``; KeyError if it is not attached (it may have been removed for raising)."""
        hub = self._instrument_set
        if hub is None or not hub.remove(instrument):
            raise KeyError(f"instrument {instrument!r} is not attached to this loop")

    @property
    def instruments(self) -> tuple[object, ...]:
        """The attached instruments, in the order they are called."""
        return self._instrument_set.members if self._instrument_set is not None else ()

    def enable_timings(self) -> None:
        """Start recording where the loop's time goes (``loop.stats().timings``); a no-op if already on.
        Costs two clock reads per callback and per wait while on."""
        hub = self._instrument_hub()
        if hub.timings is None:
            hub.set_timings(TimingsRecorder(self))

    def disable_timings(self) -> None:
        """Stop recording timings and forget them (``loop.stats().timings`` is None again)."""
        if self._instrument_set is not None:
            self._instrument_set.set_timings(None)

    @property
    def _timings(self) -> TimingsRecorder | None:
        return self._instrument_set.timings if self._instrument_set is not None else None

    def _instrument_hub(self) -> InstrumentSet:
        hub = self._instrument_set
        if hub is None:
            hub = self._instrument_set = InstrumentSet(self, self._instruments_changed)
        return hub

    def _instruments_changed(self) -> None:
        # Select the instrumented pass only while something is attached (the plain pass never asks per callback).
        hub = self._instrument_set
        self._instruments = hub if hub else None
        self._update_hooked_pass()

    @cython.locals(self=_CoreState)
    def _update_hooked_pass(self) -> None:
        # The pass runs its plain code unless debug mode or an instrument needs the hooked one; one flag for
        # both keeps the plain pass's cost where it was before instruments existed (set_debug calls this too).
        self._hooked_pass = self._debug or self._instruments is not None
        if self._hooked_pass:
            self._track_queued_posts()  # the hooked pass runs handles through Python code that never tracks them

    def _track_queued_posts(self) -> None:
        """Stop untracking call_soon_threadsafe's handles and hand the queued ones back to the collector (see
        ``_UNTRACK_TS``): from here on nothing will track them before they run."""
        if cython.compiled and self._untrack_posts:
            self._untrack_posts = False
            ml_gc_retrack_all(self._ready)  # type: ignore[name-defined]  # noqa: F821

    @property
    def _read_buffer(self) -> memoryview:
        view = self._read_view
        if view is None:  # on first use: a loop without stream transports never pays for it
            view = self._read_view = memoryview(bytearray(READ_BUFFER_SIZE))
        return view

    # -------------------------------------------------------------------------------------------- checks
    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._forked:
            self._raise_forked()

    def _raise_forked(self) -> None:
        raise errors.LoopForkedError(
            f"this {self._backend_name} event loop was created in process {self._pid} and cannot be used in "
            f"forked child {os.getpid()} (it would share the parent's kernel state); create a new loop "
            f"in the child with multiloop.new_loop()")

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if _aio_events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _check_thread(self) -> None:
        if self._thread_id is None:
            return
        if threading.get_ident() != self._thread_id:
            raise RuntimeError("Non-thread-safe operation invoked on an event loop other than the current one")

    # ------------------------------------------------------------------------------------------- running
    @cython.locals(self=_CoreState)
    def run_forever(self) -> None:
        with self.enter_running():
            poller = self._poller
            if poller.drives_loop:
                poller.drive(self._iteration)
            else:
                if cython.compiled:
                    self._untrack_posts = _UNTRACK_TS and not self._hooked_pass
                    try:
                        while True:
                            self._run_once()  # a C call (core.pxd)
                            if self._stopping:
                                break
                    finally:
                        self._track_queued_posts()
                else:
                    while True:
                        self._run_once()  # the pure build's loader inlines it (see _INLINE_WHEN_PURE)
                        if self._stopping:
                            break

    @property
    def iteration(self) -> Iteration:
        """The core's half of one loop pass, for backends that drive the loop themselves."""
        return self._iteration

    @contextlib.contextmanager
    def enter_running(self) -> Iterator[None]:
        """Mark this loop as running in the current thread for the duration of the ``with`` block.

        ``run_forever`` uses it; a backend that embeds the loop in a host loop (the trio bridge inside an
        already running ``trio.run``) uses it too, then drives passes through :attr:`iteration` from a host
        task. It checks the loop is usable, installs it as asyncio's running loop, installs the async
        generator hooks and debug coroutine tracking, and undoes all of that on exit.
        """
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_hooks = sys.get_asyncgen_hooks()
        try:
            self._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            _aio_events._set_running_loop(self)
            yield
        finally:
            self._stopping = False
            self._may_block = False
            self._thread_id = None
            _aio_events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_hooks)

    def run_until_complete(self, future: Any) -> Any:
        self._check_closed()
        self._check_running()
        new_task = not asyncio.isfuture(future)
        future = asyncio.ensure_future(future, loop=self)
        if new_task:
            # The task is ours alone: an exception must not be logged as "never retrieved" if we raise.
            future._log_destroy_pending = False
        future.add_done_callback(self._stop_when_done)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                future.exception()  # mark retrieved; the caller sees the BaseException
            raise
        finally:
            future.remove_done_callback(self._stop_when_done)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def _stop_when_done(self, fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled():
            exc = fut.exception()
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                # Let it propagate out of run_forever as it would with stock asyncio.
                return
        fut.get_loop().stop()

    def stop(self) -> None:
        self._stopping = True

    def is_running(self) -> bool:
        return self._thread_id is not None

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._forked:
            # A fork inside a running callback leaves the child's copy "running" forever; closing it must
            # still release the child's copies of the fds (never the parent's kernel state).
            self._thread_id = None
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._closed = True
        self._ready.clear()
        self._checked_function = None
        for timer in self._scheduled.take_all():
            timer._scheduled = False
        self._timer_cancelled_count = 0
        self._shutdown_executor_nowait()
        self._close_io()
        _live_loops.discard(self)

    def _close_io(self) -> None:
        """Release the wake-up fd, the fd table and the backend. In a forked child this only drops our
        references: closing an fd never touches the parent's registrations, but EPOLL_CTL_DEL would."""
        self._waker.close()
        self._fdtable.clear()
        self._poller.close()

    def time(self) -> float:
        return ml_monotonic() if cython.compiled else _monotonic()  # type: ignore[name-defined]  # noqa: F821

    @cython.locals(self=_CoreState)
    def get_debug(self) -> bool:
        # Here as well as in services.py: every Handle.cancel() and Handle.__init__ asks, compiled it is a field read.
        return self._debug

    def _discard_stale(self) -> None:
        """Hand the fds of this batch that the core has no registration for to the backend, in one call."""
        unknown, self._stale_fds = self._stale_fds, []
        self._n_stale += len(unknown)
        self._poller.discard_stale(unknown)

    def _audit(self, events: list[tuple[int, int]], rotation: int) -> list[tuple[int, int]]:
        """Mark as INVALID the reported fds (a few, rotating) that are not open any more.

        Backends report a closed fd when their kernel does (POLLNVAL, EBADF). epoll cannot: a registration
        whose fd was closed while a dup() keeps the file open goes on reporting the old number as ready,
        and a reader still registered under it runs -- and fails -- on every pass, forever. Sampling a few
        fds every 256th pass costs a bit-test per pass and an fstat per fd sampled, and bounds such a busy
        loop to about 256 passes; it also protects the loop from a third-party backend that loses POLLNVAL
        (selectors does). A backend that declares ``reports_closed_fds`` is trusted and never sampled.
        ``rotation`` varies which fds of a long list are sampled."""
        if self._poller.reports_closed_fds:
            return events
        fds = self._fds
        n = len(events)
        if not n:
            return events
        start = rotation % n
        checked = 0
        for i in range(n):
            fd, ev = events[(start + i) % n]
            if ev & INVALID or fd not in fds:
                continue
            try:
                os.fstat(fd)
            except OSError as exc:
                if exc.errno == errno.EBADF:
                    events = [(f, INVALID if f == fd else e) for f, e in events]
            checked += 1
            if checked == _AUDIT_FDS:
                break
        return events

    def _drop_dead_fd(self, fd: int, entry: FdEntry) -> None:
        """The backend says ``fd`` is not open any more (INVALID): it was closed behind the loop's back,
        with its reader/writer still registered. Waking the callbacks cannot help (each would meet EBADF,
        forever), so drop the registration and cancel the callbacks now, and report it once -- unless its
        owner removes it later in this same pass.

        Why the report waits: closing a socket and removing its reader one pass later is ordinary clean-up
        (anyio closes a socket while a receive waits, and the waiting future's done callback, queued by the
        close, removes the reader in the next pass). poll() reports the closed fd at the start of that very
        pass. The registration is dropped at once either way (no spin); the report, queued behind the
        callbacks already waiting, is made only if nobody removed the registration meanwhile."""
        self._n_dead += 1
        record = self._fdtable.dead[fd] = [entry.mask, entry.fileobj]
        reader, writer = entry.reader, entry.writer
        callbacks = [h for h in (reader, writer) if h is not None]
        what = " and ".join(f"{kind} {h!r}" for kind, h in (("reader", reader), ("writer", writer))
                            if h is not None) or "no callback"
        # Handle keeps its callback in a private slot of the public type (cancel() clears it: read it first).
        context_callbacks = {kind: cast(Any, h)._callback for kind, h in (("reader", reader), ("writer", writer))
                             if h is not None}
        table = self._fdtable
        for remove in (table.remove_reader, table.remove_writer):  # cancels the handles, tells the backend
            try:
                remove(fd)
            except errors.PollerError:
                pass  # the kernel forgot the fd already; the table and the backend agree it is gone
        exc = errors.BadFdError(
            f"{self._backend_name}: fd {fd} was closed while still registered with this event loop "
            f"({what}); its registration was dropped and its callbacks will not run again. Call "
            f"remove_reader()/remove_writer() before closing an fd the loop watches",
            backend=self._backend_name, fd=fd, errno=errno.EBADF)
        context: dict[str, Any] = {"message": str(exc), "exception": exc, "fd": fd,
                                   "backend": self._backend_name}
        if callbacks:
            context["handle"] = callbacks[0]
        context.update(context_callbacks)
        self._ready.append(_Handle(self._report_dead_fd, (fd, record, context), self, None))

    def _report_dead_fd(self, fd: int, record: list[Any], context: dict[str, Any]) -> None:
        if self._fdtable.dead.get(fd) is record:  # not removed by its owner meanwhile
            del self._fdtable.dead[fd]
            self.call_exception_handler(context)

    def _run_handle_debug(self, handle: asyncio.Handle) -> None:
        self._current_handle = handle
        try:
            t0 = self.time()
            handle._run()
            dt = self.time() - t0
            if dt >= self.slow_callback_duration:
                logger.warning("Executing %s took %.3f seconds (multiloop backend %s)",
                               _describe_handle(handle), dt, self._backend_name)
        finally:
            self._current_handle = None
            # A traceback raised under this handle keeps this frame alive through f_back; without this the
            # frame would keep the handle, hence its task, alive, and "exception was never retrieved"
            # would come late (CPython test_futures2 *_exc_handler_correct_context, debug mode).
            del handle

    def _purge_cancelled_timers(self) -> None:
        # In place: the pass that calls this goes on popping due timers from the same heap object.
        for timer in self._scheduled.remove_if(_is_cancelled):
            timer._scheduled = False
        self._timer_cancelled_count = 0

    @cython.locals(self=_CoreState)
    def _timer_handle_cancelled(self, handle: Any) -> None:
        # Called by asyncio.TimerHandle.cancel() (public type; this name is its contract with the loop).
        # ``handle``: a TimerHandle, typed Any for its private ``_scheduled`` slot.
        if handle._scheduled:
            self._timer_cancelled_count += 1

    # ------------------------------------------------------------------------------------- scheduling
    @cython.locals(self=_CoreState)
    def call_soon(self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        # The common callback types cost one test here; anything else gets the full check.
        tp = type(callback)
        if tp is _FunctionType:
            if cython.compiled:
                if ml_code_flags(callback) & _CORO_FLAGS:  # type: ignore[name-defined]  # noqa: F821
                    _check_callback(callback, "call_soon")
            elif callback is not self._checked_function:  # pure build: see _checked_function
                self._checked_function = _plain_function(callback, "call_soon")
        elif tp not in _PLAIN_CALLABLES:
            _check_callback(callback, "call_soon")
        handle: Any  # the private _source_traceback slot is used
        if self._debug:
            self._check_thread()
            handle = _Handle(callback, args, self, context)
            if handle._source_traceback and not cython.compiled:
                # This method's frame (compiled, it has none): the traceback starts at the caller.
                del handle._source_traceback[-1]
        elif cython.compiled and _FAST:
            handle = ml_new(_Handle, callback, args, self, context, None)  # type: ignore[name-defined]  # noqa: F821
        else:
            # asyncio.Handle.__init__ minus its get_debug() call. Written out here and in _new_timer rather
            # than shared through a helper: the call alone costs ~25 ns, 6% of a call_soon + run and 2% of
            # a timer (measured on 3.11 and 3.13). tests/test_handle_contract.py checks both copies against
            # handles asyncio builds and fails loudly if a Python release changes the slots.
            handle = _new_object(_Handle)
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._loop = self
            handle._repr = None
            handle._source_traceback = None
            handle._context = _copy_context() if context is None else context
        if _FAST_DEQUE:
            ml_deque_append(self._ready, handle)  # type: ignore[name-defined]  # noqa: F821
        else:
            self._ready_append(handle)
        if self._may_block:
            # Only a backend whose wait lets other code of this thread run (the trio bridge: trio tasks run
            # while the loop waits) can get here; a blocking poll() cannot. Wake it to see the callback.
            self._waker.wake()
        return handle

    @cython.locals(self=_CoreState)
    def call_later(self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        return self._new_timer((ml_monotonic() if cython.compiled else _monotonic()) + delay, callback, args, context)  # type: ignore[name-defined]  # noqa: F821

    @cython.locals(self=_CoreState)
    def call_at(self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        return self._new_timer(when, callback, args, context)

    @cython.locals(self=_CoreState)
    def call_soon_threadsafe(self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                             context: contextvars.Context | None = None) -> asyncio.Handle:
        if self._closed or self._forked:
            self._check_closed()  # raises the right error
        tp = type(callback)  # see call_soon
        if tp is _FunctionType:
            if cython.compiled:
                if ml_code_flags(callback) & _CORO_FLAGS:  # type: ignore[name-defined]  # noqa: F821
                    _check_callback(callback, "call_soon_threadsafe")
            elif callback is not self._checked_function:  # pure build: see _checked_function
                self._checked_function = _plain_function(callback, "call_soon_threadsafe")
        elif tp not in _PLAIN_CALLABLES:
            _check_callback(callback, "call_soon_threadsafe")
        # A handle another thread may cancel while this one runs it (see _threadsafe_handle). Outside debug
        # mode it is built like call_soon's, plus its two own slots.
        handle: Any
        if self._debug:
            handle = _ThreadSafeHandle(callback, args, self, context)
            if handle._source_traceback:
                # The handle's __init__, and this method's frame where it has one (see call_soon).
                del handle._source_traceback[-1 if cython.compiled else -2:]
        elif cython.compiled and _FAST_TS:
            handle = ml_new_threadsafe(callback, args, self, context)  # type: ignore[name-defined]  # noqa: F821
        else:
            handle = _new_object(_ThreadSafeHandle)
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._loop = self
            handle._repr = None
            handle._source_traceback = None
            handle._context = _copy_context() if context is None else context
            handle._lock = None
            handle._runner = None
        if cython.compiled and self._untrack_posts:
            # Out of the collector's sight until the pass takes it (_UNTRACK_TS). The flag test and the append
            # below allocate nothing, so with the GIL no other thread runs between them.
            ml_gc_untrack(handle)  # type: ignore[name-defined]  # noqa: F821
        # deque.append is atomic (a per-object lock on free-threaded builds, which ml_deque_append takes too)
        if _FAST_DEQUE:
            ml_deque_append(self._ready, handle)  # type: ignore[name-defined]  # noqa: F821
        else:
            self._ready_append(handle)
        if cython.compiled:
            # Free-threaded builds: the append is visible before we read the flag (see _compute_timeout).
            ml_fence()  # type: ignore[name-defined]  # noqa: F821
        if self._may_block:
            self._waker.wake()
        return handle

    def create_future(self) -> asyncio.Future[Any]:
        return _Future(loop=self)

    if sys.version_info >= (3, 14):
        def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            """3.14: every keyword (``name``, ``context``, ``eager_start``, and whatever a task factory
            accepts) goes to the factory, or to ``asyncio.Task``, unchanged."""
            self._check_closed()
            factory = self._task_factory
            task: Any
            if factory is not None:
                task = factory(self, coro, **kwargs)
            else:
                task = _tasks_module.Task(coro, loop=self, **kwargs)  # the private _source_traceback is used
                if task._source_traceback and not cython.compiled:
                    del task._source_traceback[-1]  # this method's frame (see call_soon)
            if self._instruments is not None:
                self._instruments.task_created(task)
            try:
                return task
            finally:
                # An eager task that failed already holds a traceback through this frame: without this the
                # frame's reference to the task would make a cycle (CPython gh-128552).
                del task
    else:
        def create_task(self, coro: Any, *, name: str | None = None, context: Any = None) -> asyncio.Task[Any]:
            """3.11-3.13: a task factory is called as ``factory(loop, coro[, context=])`` and the name set
            on its result afterwards (factories written for those Pythons take no other keywords)."""
            self._check_closed()
            task: Any  # the private _source_traceback slot is used
            if self._task_factory is None:
                task = _tasks_module.Task(coro, loop=self, name=name, context=context)
                if task._source_traceback and not cython.compiled:
                    del task._source_traceback[-1]  # this method's frame (see call_soon)
            else:
                if context is None:
                    task = self._task_factory(self, coro)
                else:
                    task = self._task_factory(self, coro, context=context)
                if name is not None:
                    task.set_name(name)
            if self._instruments is not None:
                self._instruments.task_created(task)
            return task

    def set_task_factory(self, factory: Callable[..., Any] | None) -> None:
        if factory is not None and not callable(factory):
            raise TypeError(f"task factory must be a callable or None, not {type(factory).__name__}")
        self._task_factory = factory

    def get_task_factory(self) -> Callable[..., Any] | None:
        return self._task_factory

    # ------------------------------------------------------------------------------- fd registration
    # The public methods: the same table the transports use, after checking no live transport owns the fd.
    def add_reader(self, fd: Any, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts) -> None:
        fdtable = self._fdtable
        fileno = fdtable.public_fd(fd)
        _check_callback(callback, "add_reader")
        fdtable.add_reader(fileno, callback, *args)
        fdtable.remember_file(fileno, fd)

    def add_writer(self, fd: Any, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts) -> None:
        fdtable = self._fdtable
        fileno = fdtable.public_fd(fd)
        _check_callback(callback, "add_writer")
        fdtable.add_writer(fileno, callback, *args)
        fdtable.remember_file(fileno, fd)

    def remove_reader(self, fd: Any) -> bool:
        fdtable = self._fdtable
        fileno = fdtable.public_fd_to_remove(fd)
        return fdtable.remove_reader(fileno) or (bool(fdtable.dead) and fdtable.settle_dead(fileno, READ))

    def remove_writer(self, fd: Any) -> bool:
        fdtable = self._fdtable
        fileno = fdtable.public_fd_to_remove(fd)
        return fdtable.remove_writer(fileno) or (bool(fdtable.dead) and fdtable.settle_dead(fileno, WRITE))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed and not self._forked:
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()


def _describe_handle(handle: asyncio.Handle) -> str:
    cb = getattr(handle, "_callback", None)
    task = getattr(cb, "__self__", None)
    if isinstance(task, asyncio.Task):
        return repr(task)
    return repr(handle)
