"""The trio poller's multiplexed watcher: every fd in one inner kernel poller, one trio task waiting on it.

Facts that shape this module:

- An epoll set is itself a file descriptor, readable while any of its registrations is ready; so is a kqueue.
  trio can therefore wait for "any of these fds" -- which its public API cannot express -- through
  ``trio.lowlevel.wait_readable(inner.fileno())``: one trio registration and one task for the whole table,
  instead of one task (about 3.6 KB, and a registration syscall per wait) per fd and direction.
- multiloop's epoll and kqueue backends are such pollers. They are found through the registry like any
  backend (the best automatic one whose poller has a ``fileno()``, or ``$MULTILOOP_TRIO_INNER``), and used
  through the Poller contract only: level-triggered ``register``/``modify``/``unregister``/``poll(0)``,
  ``discard_stale`` for epoll's stale registrations, INVALID when a rebuild finds a closed fd.
- trio registers a waited fd one-shot: every wait is an ``epoll_ctl`` (or ``kevent``) call, and waking the
  waiting task, then the task running the loop's passes, costs two task switches. ``poll(0)`` on the inner
  poller is one syscall.
- epoll's poller replaces its kernel object when it rebuilds its set (to drop registrations a ``dup()`` keeps
  alive), closing the old one under trio's wait. ``trio.lowlevel.notify_closing`` called right after, with no
  checkpoint in between (trio cannot tell the order), wakes the task with ``ClosedResourceError``; it then
  waits on the new fd.
- epoll forgets a closed fd silently: a callback that closes its own fd and forgets ``remove_reader`` would
  leave a registration nothing ever reports (and with a ``dup()`` of it, one reported forever). So after each
  pass, the fds it reported that the core still watches are checked (``os.get_inheritable``: one
  ``fcntl(F_GETFD)``, 0.15 us) and a closed one is reported INVALID in the next pass -- what the per-fd
  watches did when trio's re-arm failed with EBADF.
- epoll refuses regular files (refused by the trio poller before they get here) and some character devices
  (EPERM: ``/dev/null``): such an fd is always ready, as select() says, and is reported on every pass.
- trio may hold the thread only between checkpoints: the loop's passes checkpoint once per pass anyway.

Design (inside a trio run: ``open_loop``, and ``drive`` where trio runs the loop): one trio system task waits for the inner fd, marks the inner poller *ready*, wakes the passes and
parks. The next pass polls the inner poller (``poll(0)``) and dispatches. While that keeps finding events,
the task stays parked and each pass polls the inner poller again after its checkpoint (one syscall instead
of a trio registration and two task switches: an fd ping-pong runs 4.5x faster than with a task per fd);
the first pass that finds nothing sends the task back to trio's wait before the loop may block (the inner
poller is level-triggered: whatever is still ready makes its fd readable again at once). The inner poller
is created when a trio run starts (``open``/``start``) and closed when it ends (``stop``), filled from the
trio poller's own table: no kernel state outlives a run, so the backend stays fork-safe between runs, as
when trio's own epoll was the only one.

*Host-polled* (``start(..., host=wake)``: the drive path, where trio is a guest of the loop, :mod:`._guest`):
no trio task. The host loop blocks in the inner poller itself (``wait(timeout)``), with ``wake``'s fd
registered there too so that trio's callbacks and ``call_soon_threadsafe`` end the wait; ``wait`` drains it
and keeps it out of the events. Everything else (closed fds at the start, fds the kernel cannot watch, the
check after each pass, epoll's rebuilds) is the same.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from typing import Any

import trio
import trio.lowlevel as tl

import multiloop
from multiloop import INVALID, Backend, BadFdError, Capability, Poller, PollerError, UnpollableFdError
from multiloop.registry import get_registry

NAME = "trio"
#: Environment variable naming the inner poller's backend; ``none`` selects the per-fd watches.
ENV_INNER = "MULTILOOP_TRIO_INNER"
logger = logging.getLogger("multiloop.trio")
_EMPTY: list[tuple[int, int]] = []


class MuxWatcher:
    """The watcher interface (see :class:`multiloop_trio._poller.Watcher`) over one inner poller made by
    ``backend``. ``open``/``start``/``stop`` bracket one trio run; the object and its counters outlive runs."""

    def __init__(self, backend: Backend, wake: Callable[[], None]) -> None:
        self.backend = backend
        self.name = f"multiplexed ({backend.name})"
        self._wake = wake
        self._inner: Poller | None = None
        self._fd = -1  # the inner poller's fd that the task waits on
        self._interest: dict[int, int] = {}  # the trio poller's table (the same object), for done()
        self._ready = False  # the inner poller may have events: the next take() polls it (see done())
        self._pending: dict[int, int] = {}  # fd -> INVALID, for the next take()
        self._always: dict[int, int] = {}  # fds the inner poller cannot watch (EPERM) -> their directions
        self._absent: set[int] = set()  # fds held here that the inner poller does not have
        self._taken: list[tuple[int, int]] = _EMPTY
        self._scope: trio.CancelScope | None = None
        self._task: Any = None
        self._parked: Any = None
        self._armed = False
        self._failure: BaseException | None = None
        self._started = 0
        self._polls = 0
        self._invalid = 0
        self._replaced = 0
        self._inner_totals: dict[str, int] = {}
        self._host: Any = None  # host-polled: the wake-up (a _guest.HostWake) registered in the inner poller

    # ----------------------------------------------------------------------------------- one trio run
    def open(self) -> None:
        """Create the inner poller. Raises (EMFILE, a broken backend): the caller falls back for this run."""
        inner = self.backend.factory()
        fd = inner.fileno()
        if fd is None or inner.drives_loop:
            inner.close()
            raise PollerError(f"{NAME}: the {self.backend.name} poller cannot be waited on (no fileno())",
                              backend=NAME)
        self._inner = inner
        self._fd = fd

    def start(self, interest: dict[int, int], closed: set[int], host: Any = None) -> None:
        """Fill the inner poller. ``host``: host-polled (see the module docstring), with that wake-up."""
        inner = self._inner
        assert inner is not None, "open() first"
        self._interest = interest
        for fd, mask in interest.items():
            if fd in closed:  # see TrioPoller.drive: INVALID at the first pass, not watched under its number
                self._report_invalid(fd)
                self._absent.add(fd)
                continue
            try:
                self._add(inner, fd, mask)
            except BadFdError:
                self._report_invalid(fd)
                self._absent.add(fd)
        self._check_replaced(inner)
        if host is not None:
            self._host = host
            inner.register(host.fd, multiloop.READ)
            self._armed = True
            return
        self._scope = trio.CancelScope()
        self._started += 1
        tl.spawn_system_task(self._run, self._scope, name=f"multiloop-trio inner {self.backend.name} watch")

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()  # synchronous: trio forgets the inner fd before it is closed below
        inner, self._inner = self._inner, None
        self._forget()
        if inner is not None:
            self._add_totals(inner)
            inner.close()

    def forget(self) -> None:
        """A forked child's copy: the task is a copy of the parent's, and cancelling it would update the trio
        epoll/kqueue object the child shares with the parent. Closing our copy of the inner fd is harmless
        (the parent's registrations live on in its copy); on a kqueue, which a child does not inherit, the
        close may fail."""
        inner, self._inner = self._inner, None
        self._forget()
        if inner is not None:
            try:
                inner.close()
            except OSError:
                pass

    def _forget(self) -> None:
        self._scope = self._task = self._parked = self._host = None
        self._fd = -1
        self._ready = self._armed = False
        self._pending.clear()
        self._always.clear()
        self._absent.clear()
        self._taken = _EMPTY
        self._failure = None

    def armed(self) -> bool:
        return self._armed

    # ----------------------------------------------------------------------------------- registration
    def change(self, fd: int, old: int, new: int) -> None:
        inner = self._inner
        assert inner is not None
        if self._absent or self._always:
            if fd in self._always:
                if new:
                    self._always[fd] = new
                else:
                    del self._always[fd]
                    self._absent.discard(fd)
                return
            if fd in self._absent:
                if not new:
                    self._absent.discard(fd)
                    self._pending.pop(fd, None)
                return
        try:
            if not old:
                self._add(inner, fd, new)
            elif new:
                inner.modify(fd, new)
            else:
                self._pending.pop(fd, None)
                try:
                    inner.unregister(fd)
                except PollerError:
                    # The contract's "unregister must not fail for a closed fd", for kernels that say so
                    # with another errno (epoll: EINVAL once a rebuild's new set took the closed number).
                    if _is_open(fd) and fd != inner.fileno():
                        raise
        except PollerError as exc:
            raise _as_ours(exc, inner) from None
        self._check_replaced(inner)

    def _add(self, inner: Poller, fd: int, mask: int) -> None:
        try:
            inner.register(fd, mask)
        except UnpollableFdError:
            self._always[fd] = mask
            self._absent.add(fd)

    def discard_stale(self, fds: list[int]) -> None:
        inner = self._inner
        if inner is not None:
            inner.discard_stale(fds)
            self._check_replaced(inner)

    def _check_replaced(self, inner: Poller) -> None:
        fd = inner.fileno()
        if fd != self._fd:
            # The inner poller replaced its kernel object (epoll's rebuild) and closed the one the task
            # waits on: wake the task (ClosedResourceError), it waits on the new one.
            # The next pass polls it even if the new fd is not readable: a rebuild may have found closed fds,
            # which the inner poller reports as INVALID at its next poll.
            old, self._fd = self._fd, -1 if fd is None else fd
            self._replaced += 1
            if self._host is not None:
                return  # host-polled: no trio wait on the old fd; the host polls the new one next pass
            self._ready = True
            tl.notify_closing(old)

    # ----------------------------------------------------------------------------------------- events
    def has_events(self) -> bool:
        return self._ready or bool(self._pending) or bool(self._always)

    def take(self) -> list[tuple[int, int]]:
        if self._ready:
            if self._failure is not None:
                self._ready = False
                failure, self._failure = self._failure, None
                raise failure
            assert self._inner is not None
            self._polls += 1
            events = self._inner.poll(0)
            self._ready = bool(events)  # found some: poll again next pass (see done())
        else:
            events = _EMPTY
        if self._pending or self._always:
            # INVALID first: the core drops the fd before a readiness the inner poller also reported for it
            # could wake its callback (that report then reaches discard_stale).
            events = list(self._pending.items()) + [(fd, m) for fd, m in self._always.items()] + events
            self._pending.clear()
        self._taken = events
        return events

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        """Host-polled ``take``: block in the inner poller for at most ``timeout`` (None: no limit) seconds,
        or not at all when something is pending; the host wake-up's fd is drained and left out."""
        inner = self._inner
        assert inner is not None and self._host is not None, "start(..., host=) first"
        pending = self._pending or self._always
        self._polls += 1
        events = inner.poll(0 if pending else timeout)
        if events:
            wake_fd = self._host.fd
            for i, (fd, _) in enumerate(events):
                if fd == wake_fd:
                    self._host.drain()
                    events = events[:i] + events[i + 1:]
                    break
        if pending:
            events = list(self._pending.items()) + [(fd, m) for fd, m in self._always.items()] + events
            self._pending.clear()
        self._taken = events
        return events

    def done(self) -> None:
        """The pass dispatched what ``take`` returned: find fds its callbacks closed, and wait again.

        While the inner poller keeps reporting events, the task stays parked and every pass polls the inner
        poller itself (``poll(0)``, after the pass's checkpoint, so trio's other tasks still run between
        passes): one syscall per pass instead of a trio registration and two task switches. The first pass
        that finds nothing sends the task back to trio's wait before the loop blocks."""
        events, self._taken = self._taken, _EMPTY
        if events:
            interest = self._interest
            for fd, ev in events:
                if fd in interest and not ev & INVALID:
                    try:
                        os.get_inheritable(fd)
                    except OSError as exc:
                        if exc.errno == errno.EBADF:
                            self._always.pop(fd, None)  # stays in _absent: the inner poller never had it
                            self._report_invalid(fd)
        if not self._ready:
            task = self._parked
            if task is not None:
                self._parked = None
                tl.reschedule(task)

    def _report_invalid(self, fd: int) -> None:
        self._pending[fd] = INVALID
        self._invalid += 1

    def statistics(self) -> dict[str, int]:
        stats = {"watch_tasks": int(self._scope is not None), "watch_tasks_started": self._started,
                 "invalid_fds": self._invalid, "inner_polls": self._polls, "inner_replaced": self._replaced}
        current = self._inner.statistics() if self._inner is not None else {}
        for key in set(current) | set(self._inner_totals):
            if key != "registered":
                stats[f"inner_{key}"] = self._inner_totals.get(key, 0) + current.get(key, 0)
        return stats

    def _add_totals(self, inner: Poller) -> None:
        for key, value in inner.statistics().items():
            if key != "registered":  # a gauge, not a counter
                self._inner_totals[key] = self._inner_totals.get(key, 0) + value

    # ------------------------------------------------------------------------------------------- task
    @tl.enable_ki_protection
    async def _run(self, scope: trio.CancelScope) -> None:
        with scope:
            while not scope.cancel_called:  # cancelled: stop() may have reset the state, which is not ours
                self._armed = True
                fd = self._fd
                try:
                    await tl.wait_readable(fd)
                except trio.ClosedResourceError:
                    continue  # notify_closing: the inner poller replaced its fd (see _check_replaced)
                except Exception as exc:  # noqa: BLE001 - a system task must not raise into trio
                    # The inner fd itself failed (closed behind everyone's back): no fd can be watched any
                    # more. The next pass raises it out of the loop's run instead of hanging silently.
                    self._failure = PollerError(f"{NAME}: waiting on the inner {self.backend.name} poller's "
                                                f"fd {fd} failed: {exc!r}", backend=NAME, fd=fd,
                                                errno=getattr(exc, "errno", None))
                    self._ready = True
                    self._wake()
                    return
                if scope.cancel_called:
                    return
                self._ready = True
                self._wake()
                self._parked = tl.current_task()
                await tl.wait_task_rescheduled(self._abort_parked)

    def _abort_parked(self, _: Any) -> Any:
        self._parked = None
        return tl.Abort.SUCCEEDED


def _as_ours(exc: PollerError, inner: Poller) -> PollerError:
    """The inner poller's error, naming the trio backend (the one the user chose) and the inner one."""
    return type(exc)(f"{NAME}: {exc.message} (inner {inner.name} poller)", backend=NAME, fd=exc.fd,
                     errno=exc.errno)


def _is_open(fd: int) -> bool:
    try:
        os.get_inheritable(fd)
    except OSError as exc:
        return exc.errno != errno.EBADF
    return True


# ------------------------------------------------------------------------------- choosing the inner poller
_auto: tuple[object, Backend | None] | None = None  # (registry, its answer): probing creates a poller


def inner_backend(name: str | None = None) -> Backend | None:
    """The backend whose poller the trio poller multiplexes through, or None for the per-fd watches.

    ``name``: a backend name, ``"auto"`` (the best available automatic backend with a pollable poller), or
    ``"none"``; None means ``$MULTILOOP_TRIO_INNER``, or ``"auto"`` when that is unset. A name that cannot
    serve is an error saying why."""
    source = "inner="
    if name is None:
        name = os.environ.get(ENV_INNER, "").strip() or "auto"
        source = f"${ENV_INNER}"
    if name == "none":
        return None
    registry = get_registry()
    if name == "auto":
        global _auto
        if _auto is None or _auto[0] is not registry:
            _auto = (registry, _best(registry))
        return _auto[1]
    if name == NAME:
        raise multiloop.BackendUnavailableError(f"{NAME}: {source} cannot name the trio backend itself as "
                                                f"its inner poller", backend=NAME)
    backend = registry.get(name, source=source)
    reason = registry.probe(name)
    if reason is None:
        reason = _unpollable_reason(backend)
    if reason is not None:
        raise multiloop.BackendUnavailableError(f"{NAME}: backend {name!r} ({source}) cannot be the inner "
                                                f"poller: {reason}", backend=NAME)
    return backend


def _best(registry: Any) -> Backend | None:
    avoided = set(os.environ.get("MULTILOOP_AVOID", "").replace(",", " ").split())
    for name in registry.names():  # best first
        backend = registry.get(name)
        if (name == NAME or not backend.auto or name in avoided or Capability.O1 not in backend.capabilities
                or registry.probe(name) is not None):
            continue
        if _unpollable_reason(backend) is None:
            return backend
    return None


def _unpollable_reason(backend: Backend) -> str | None:
    try:
        poller = backend.factory()
    except Exception as exc:  # noqa: BLE001 - the exception is the reason
        return f"creating its poller raised {type(exc).__name__}: {exc}"
    try:
        if poller.drives_loop:
            return "its poller drives its own loop"
        if poller.fileno() is None:
            return "its poller has no fileno() to wait on"
        return None
    finally:
        poller.close()
