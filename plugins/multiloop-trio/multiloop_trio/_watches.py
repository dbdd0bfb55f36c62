"""The trio poller's fallback watcher: one trio system task per registered (fd, direction).

Used when no inner poller can be created (no registered backend whose poller is itself a pollable fd, or
its creation failed: see :mod:`multiloop_trio._mux`), or when asked for (``MULTILOOP_TRIO_INNER=none``).

Facts about trio that shape this module:

- ``trio.lowlevel.wait_readable(fd)`` / ``wait_writable(fd)`` park *one task* until one fd is ready in one
  direction, and at most one task may wait per fd and direction (a second gets ``BusyResourceError``).
  Underneath, trio uses epoll/kqueue with one-shot registrations: every wait costs a registration syscall,
  and a woken task is no longer registered.
- A task that is cancelled while parked in ``wait_readable`` is removed from trio's table *synchronously*,
  inside ``CancelScope.cancel()`` (its abort function runs then), so after ``cancel()`` the fd may be closed.
  An fd closed while a task still waits on it is silently dropped by the kernel and the task would wait
  forever; ``trio.lowlevel.notify_closing`` exists for code that closes an fd someone may be waiting on.
  The core always unregisters (we cancel the waiter) before a transport closes its socket.
- Errors (EBADF, EPERM for some character devices, EPOLLERR/HUP) surface as exceptions or as readiness in
  the waiting task, not at registration time. When re-arming fails (the fd was closed behind trio's back),
  trio drops its own record and raises the OSError into the waiting task; a closed fd whose registration
  vanished with the file is never reported at all.

Design: each watch waits, records the readiness, wakes the task running the loop's passes, then parks until
that pass has dispatched, and only then waits again (level-triggered behaviour: the callback has consumed
what made the fd ready, or the next wait reports it again at once). System tasks, because they are
infrastructure: a user's cancel scope around ``open_loop`` must not stop I/O that asyncio tasks still need
while they shut down. About 3.6 KB per watch (task, cancel scope, trio's waiter records): this is why it is
only the fallback.

- EBADF in a watch (closed behind the loop's back) is INVALID, like poll's POLLNVAL: the core drops the
  registration and reports it once. Reporting ERROR would wake the callbacks, re-arm the watch, meet the
  same error at once, and spin.
- ``ClosedResourceError`` (trio code called ``notify_closing``: the fd is about to be closed, still open) is
  ERROR: the callbacks run once, and the next wait finds the fd closed.
- EPERM (a character device epoll refuses) is "always ready", as select() says.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import Any

import trio
import trio.lowlevel as tl

from multiloop import ERROR, INVALID, READ, WRITE

logger = logging.getLogger("multiloop.trio")
_DIRECTIONS = (READ, WRITE)


class _Watch:
    """One trio task waiting for one fd in one direction."""

    __slots__ = ("fd", "direction", "scope", "parked", "armed")

    def __init__(self, fd: int, direction: int) -> None:
        self.fd = fd
        self.direction = direction
        self.scope = trio.CancelScope()
        self.parked: Any = None  # the task, while it waits for re-arming
        self.armed = False  # has reached trio's wait at least once (trio registered the fd)


class FdWatches:
    """The watcher interface (see :class:`multiloop_trio._poller.Watcher`) with one trio task per (fd,
    direction). ``start``/``stop`` bracket one trio run; the object, and its counters, outlive runs."""

    name = "per-fd watches"

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._watches: dict[tuple[int, int], _Watch] = {}
        self._events: dict[int, int] = {}
        self._reported: list[_Watch] = []
        self._taken: list[_Watch] = []
        self._started = 0
        self._invalid = 0

    # ----------------------------------------------------------------------------------- one trio run
    def start(self, interest: dict[int, int], closed: set[int]) -> None:
        for fd, mask in interest.items():
            if fd in closed:  # INVALID at the first pass, no watch on whatever has the number now
                self._events[fd] = INVALID
                self._invalid += 1
                continue
            for d in _DIRECTIONS:
                if mask & d:
                    self._start_watch(fd, d)

    def stop(self) -> None:
        for w in self._watches.values():
            w.scope.cancel()
        self._forget()

    def forget(self) -> None:
        """A forked child's copy: the watches are copies of the parent's trio tasks, and cancelling one runs
        trio's abort callback, which updates the epoll/kqueue object the child shares with the parent."""
        self._forget()

    def _forget(self) -> None:
        self._watches.clear()
        self._events.clear()
        self._reported = []
        self._taken = []

    def armed(self) -> bool:
        return all(w.armed for w in self._watches.values())

    # ----------------------------------------------------------------------------------- registration
    def change(self, fd: int, old: int, new: int) -> None:
        for d in _DIRECTIONS:
            if old & d and not new & d:
                self._stop_watch(fd, d, new)
            elif new & d and not old & d:
                self._start_watch(fd, d)
        if not new:
            self._events.pop(fd, None)

    def discard_stale(self, fds: list[int]) -> None:
        """Nothing to do: a cancelled watch leaves nothing behind that could report."""

    # ----------------------------------------------------------------------------------------- events
    def has_events(self) -> bool:
        return bool(self._events)

    def take(self) -> list[tuple[int, int]]:
        self._taken, self._reported = self._reported, []
        events = self._events
        if not events:
            return []
        result = list(events.items())
        events.clear()
        return result

    def done(self) -> None:
        """The pass dispatched what ``take`` returned: the watches that reported wait again."""
        taken, self._taken = self._taken, []
        for w in taken:
            task = w.parked
            if task is not None:
                w.parked = None
                tl.reschedule(task)

    def statistics(self) -> dict[str, int]:
        return {"watch_tasks": len(self._watches), "watch_tasks_started": self._started,
                "invalid_fds": self._invalid}

    # ---------------------------------------------------------------------------------------- watches
    def _start_watch(self, fd: int, direction: int) -> None:
        w = _Watch(fd, direction)
        self._watches[fd, direction] = w
        self._started += 1
        tl.spawn_system_task(self._watch, w, name=f"multiloop-trio watch fd {fd} "
                                                  f"{'read' if direction == READ else 'write'}")

    def _stop_watch(self, fd: int, direction: int, remaining: int) -> None:
        w = self._watches.pop((fd, direction), None)
        if w is not None:
            # Synchronous: if the task is parked in wait_readable/wait_writable, trio forgets the fd now.
            w.scope.cancel()
        pending = self._events.get(fd)
        if pending is not None:
            # Keep what the fd's other watch reported (its direction, or ERROR), drop what was ours.
            pending &= ~direction
            if pending and remaining & ~direction:
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
