"""The handle ``call_soon_threadsafe`` returns: cancellable from any thread, safely, and cheap to make.

Facts:
- A plain ``asyncio.Handle`` is not thread-safe: another thread's ``cancel()`` can land while the loop thread is
  between "not cancelled?" and running the callback, and ``cancel()`` clears ``_callback``/``_args`` under it.
- CPython 3.14 (and later 3.12/3.13 patch releases) return ``asyncio.events._ThreadSafeHandle`` from
  ``call_soon_threadsafe``: a Handle with a per-handle re-entrant lock held by ``cancel()``, ``cancelled()``
  and ``_run()``, so a cancel from another thread waits until a running callback returns, and a cancelled
  handle never runs. Its own tests check ``isinstance(handle, asyncio.events._ThreadSafeHandle)``.
- That lock costs a third of the whole call: making an RLock (~150 ns) next to a Handle (~250 ns), then taking
  it on every run. Yet almost no handle is ever cancelled, let alone from another thread while it runs.

Design: a subclass of asyncio's class where it exists (so ``isinstance`` holds), else of ``asyncio.Handle``,
with the same guarantee and no lock per handle:
- ``_runner`` says where the handle is: ``None`` (not started), the ident of the thread running the callback,
  or ``_DONE``. ``_run`` moves it None -> ident only if not cancelled, and ident -> ``_DONE`` when the callback
  returns; ``cancel`` sets ``_cancelled`` only while the handle is not running in another thread. Both decide
  under one process-wide lock (``_transition``) that is held for a few slot reads and writes, never while a
  callback or any other code runs, so it cannot deadlock and is rarely contended. On free-threaded builds it
  also orders the slot writes between the threads.
- A cancel that finds the callback running in another thread makes the handle's ``_lock`` (the slot asyncio's
  class has; ours declares it on older Pythons) a held Lock and waits on it; ``_run`` releases it when the
  callback returns, and each waiter passes it on. Only that rare cancel ever allocates a lock.
- A cancel from inside the running callback (its own thread) does not wait, as with asyncio's re-entrant lock.
- ``cancelled()`` asked from another thread while the callback runs waits for it to return too, as asyncio's
  does (CPython's tests check it).
- ``CANCELLER_INSIDE[0]`` is True while a ``cancel()``/``cancelled()`` is between its reads and writes under
  ``_transition``. The compiled core's runner reads it instead of asking the lock (``lock.locked()`` is a
  Python call, ~100 instructions, twice per handle): with a GIL its section is C code that no other thread can
  interrupt, so it needs the lock only while a canceller is inside. A canceller that holds the lock but has not
  raised the flag yet, or has lowered it, is not touching the handle; either order of the two sections is one
  the lock would also allow. Free-threaded builds always take the lock, as the ``PyMutex`` inside it where its
  layout checks out (``ml_init_lock``): its ``acquire()`` parses arguments on every call.
The core builds these handles without calling ``__init__`` outside debug mode (as it does plain handles), so
it sets ``_lock`` and ``_runner`` to None itself; ``tests/test_threadsafe_handle.py`` checks that shape. The
compiled core runs them with its own copy of ``_run`` (``core._run_threadsafe``: the same protocol, the
callback run inline), so a change to the protocol here must be made there too.
"""

from __future__ import annotations

import asyncio
import os
import threading
from asyncio import events as _aio_events
from typing import Any

_AsyncioThreadSafeHandle: type[asyncio.Handle] | None = getattr(_aio_events, "_ThreadSafeHandle", None)
IS_ASYNCIO_CLASS = _AsyncioThreadSafeHandle is not None
_Base: Any = _AsyncioThreadSafeHandle if _AsyncioThreadSafeHandle is not None else asyncio.Handle

_DONE = -1  # _runner once the callback has returned (thread idents are positive)
_get_ident = threading.get_ident
_allocate_lock = threading.Lock
_handle_run = asyncio.Handle._run
_transition = threading.Lock()
#: See the module's facts. A list, so the compiled core keeps one reference and reads item 0 in C.
CANCELLER_INSIDE: list[bool] = [False]


class _CancellerSection:
    """``with _SECTION:``: a canceller's critical section, the transition lock held and ``CANCELLER_INSIDE``
    raised inside it (lowered before the lock goes, so a runner that sees it down finds nobody inside)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _transition.acquire()
        CANCELLER_INSIDE[0] = True

    def __exit__(self, *exc_info: object) -> None:
        CANCELLER_INSIDE[0] = False
        _transition.release()


_SECTION = _CancellerSection()


def _reset_after_fork() -> None:
    # A thread of the parent may have held the lock at fork(); in the child nobody would release it.
    global _transition
    _transition = threading.Lock()
    CANCELLER_INSIDE[0] = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class ThreadSafeHandle(_Base):
    """A Handle whose cancel() from another thread either precedes the callback or waits for it to return."""

    __slots__ = ("_runner",) if IS_ASYNCIO_CLASS else ("_lock", "_runner")
    _runner: int | None
    _lock: Any
    _cancelled: bool

    def __init__(self, callback: Any, args: Any, loop: Any, context: Any = None) -> None:
        # asyncio.Handle's __init__ (debug: the source traceback), not the parent's: no RLock.
        asyncio.Handle.__init__(self, callback, args, loop, context)
        self._lock = None
        self._runner = None

    def cancel(self) -> None:
        with _SECTION:
            runner = self._runner
            if runner is None or runner == _DONE or runner == _get_ident():
                first = not self._cancelled
                self._cancelled = True
                waiter = None
            else:  # running in another thread: wait for it to return
                waiter = self._lock
                if waiter is None:
                    waiter = self._lock = _allocate_lock()
                    waiter.acquire()
        if waiter is not None:
            with waiter:  # released by _run when the callback returns; passed on to the next waiter
                pass
            with _SECTION:
                first = not self._cancelled
                self._cancelled = True
        if first:
            # What asyncio.Handle.cancel does after setting the flag: outside the lock, since repr() runs
            # arbitrary code. The callback can no longer start (the flag is set), so dropping it is safe.
            if self._loop.get_debug():
                self._repr = repr(self)
            self._callback = None
            self._args = None

    def cancelled(self) -> bool:
        # As with asyncio's lock: asked from another thread while the callback runs, the answer waits for it
        # to return (CPython's test_call_soon_threadsafe_handle_block_check_cancelled relies on that).
        with _SECTION:
            runner = self._runner
            if runner is None or runner == _DONE or runner == _get_ident():
                return self._cancelled
            waiter = self._lock
            if waiter is None:
                waiter = self._lock = _allocate_lock()
                waiter.acquire()
        with waiter:
            pass
        return self._cancelled

    def _run(self) -> None:
        # The loop tested _cancelled without the lock; a cancel may have landed since.
        with _transition:
            if self._cancelled:
                return
            self._runner = _get_ident()
        try:
            _handle_run(self)
        finally:
            with _transition:
                self._runner = _DONE
                waiter = self._lock
            if waiter is not None:
                waiter.release()
