"""The contract between the core and a backend: event flags, capabilities, the Poller, the descriptor.

Facts that shape the contract:

- Every readiness API reports per fd "readable", "writable", and some kind of trouble. poll(2) and epoll(7)
  give the same bits (POLLIN == EPOLLIN, POLLOUT == EPOLLOUT, POLLERR/POLLHUP == EPOLLERR/EPOLLHUP) and
  poll(2) adds POLLNVAL, "this fd is not open". select(2) fails the whole call with EBADF instead; kqueue
  reports EV_EOF/EV_ERROR per filter; trio raises in the waiting task. So multiloop's flags are poll(2)'s
  bits: two backends hand the kernel's answer over untranslated, the others translate into them.
- "Error/hang-up" and "invalid fd" need different reactions. After POLLERR/POLLHUP the fd is still open and
  the next I/O call tells the callback what happened (ECONNRESET, EOF, EPIPE): the core wakes every callback
  of the fd, as select() would. After POLLNVAL the fd is closed (the user closed it behind the loop's back):
  waking the callback again and again is a busy loop, since nothing the callback does can clear the
  condition. So ERROR and INVALID are distinct flags, and INVALID makes the core drop the registration and
  report it once through the loop's exception handler. The distinction costs nothing on the hot path: the
  core tests one combined mask per event, as it tested ERROR alone before.
- A kernel may keep reporting an fd the core no longer has a registration for: an epoll set is keyed by
  (fd, open file description), so a registration whose fd was ``dup()``ed and then closed outlives every
  attempt to delete it (see :mod:`multiloop.pollers.epoll`). The core hands such fds to
  :meth:`Poller.discard_stale`; a backend whose kernel can do this must get rid of them there.
- Most backends can block in one call ("wait at most T seconds for any of these fds"). A backend living
  inside another event loop cannot (the trio bridge waits inside ``trio.run``): it sets ``drives_loop`` and
  owns the outer loop through :meth:`Poller.drive`, calling back into the core through an :class:`Iteration`.
  The scheduler is reused unchanged; only the waiting step differs.

So a backend supplies only *waiting*: it is told which fds the core wants to read or write (``register``,
``modify``, ``unregister``) and asked which are ready (``poll``). Everything else -- scheduling, timers,
transports, servers -- lives in the core, so a backend is small and every backend behaves the same.
``python -m multiloop check-backend NAME`` checks a backend against this contract (:mod:`multiloop.kit`).
"""

from __future__ import annotations

import abc
import errno as _errno
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import BadFdError, PollerError, UnpollableFdError

__all__ = [
    "READ", "WRITE", "ERROR", "INVALID", "Capability", "CAPABILITIES", "Poller", "Iteration", "Backend",
    "translate_oserror", "check_fd_open",
]

#: The fd is (or should be watched for being) readable. POLLIN.
READ = 0x001
#: The fd is (or should be watched for being) writable. POLLOUT.
WRITE = 0x004
#: Error or hang-up (POLLERR | POLLHUP). Never registered; when reported, the core wakes *every* direction
#: registered for the fd, so the callback meets the error on its next I/O call -- what select() does, and
#: what keeps a dead peer from being ignored.
ERROR = 0x008 | 0x010
#: The fd is not open any more (POLLNVAL): closed behind the loop's back. Never registered; when reported,
#: the core drops the fd's registration (``unregister`` is called as usual), cancels its callbacks and
#: reports the fd, the backend and the callbacks once through the loop's exception handler.
INVALID = 0x020


class Capability:
    """Names of backend capabilities, modelled on libevent's ``event_method_feature`` and libev's flags."""

    #: Waiting costs O(ready fds), not O(registered fds) (epoll, kqueue; not select or poll).
    O1 = "o1"
    #: No FD_SETSIZE-style cap on the fd numbers that can be watched. A backend without it refuses an fd
    #: above its limit with :class:`~multiloop.errors.FdLimitError` at registration.
    UNLIMITED_FDS = "unlimited_fds"
    #: Can watch regular files (kqueue EVFILT_READ on files; select/poll report them always ready).
    REGULAR_FILES = "regular_files"
    #: Supports edge-triggered notification.
    EDGE_TRIGGERED = "edge_triggered"
    #: Survives fork() without sharing kernel state with the parent (no kernel object, or re-created).
    FORK_SAFE = "fork_safe"


#: Every capability name multiloop knows; ``require=``/``avoid=`` reject anything else (catches typos).
CAPABILITIES: frozenset[str] = frozenset(
    v for k, v in vars(Capability).items() if not k.startswith("_") and isinstance(v, str)
)


class Iteration(abc.ABC):
    """What the core hands to a backend's :meth:`Poller.drive`: one pass of the loop, split around the wait.

    The core implements this; a driving backend calls it. ``dispatch`` returns False once the loop has been
    asked to stop, at which point ``drive`` must return.
    """

    @abc.abstractmethod
    def timeout(self) -> float | None:
        """Seconds the wait may block: 0 when callbacks are ready, None when nothing is scheduled.

        Call it right before waiting: it also tells the core that the loop may now block, so that a
        ``call_soon_threadsafe`` from another thread wakes the wait (through :meth:`Poller.make_waker`)."""

    @abc.abstractmethod
    def dispatch(self, events: list[tuple[int, int]]) -> bool:
        """Run fd callbacks for ``events``, due timers and ready callbacks; False means "stop now"."""


class Poller(abc.ABC):
    """A readiness poller: the only thing a backend must supply. One instance per loop.

    **Registration** (abstract). The core keeps its own table and calls these exactly when its interest
    changes:

    - ``register(fd, events)`` only for an fd it has not registered, ``modify(fd, events)`` and
      ``unregister(fd)`` only for one it has. ``events`` is a non-zero combination of READ and WRITE.
    - Errors are :class:`~multiloop.errors.PollerError` subclasses naming the backend and the fd:
      ``BadFdError`` (closed/negative fd), ``FdLimitError`` (above the backend's limit),
      ``UnpollableFdError`` (the kernel cannot watch this kind of file: the core then treats the fd as
      always ready, which is what select() and poll() report for regular files). Use
      :func:`translate_oserror` to turn an ``OSError`` from the kernel into the right one: epoll's EPERM for
      a regular file must become ``UnpollableFdError``, or reading a file redirected to stdin breaks.
    - ``unregister`` of an fd that was closed behind the loop's back must succeed (the kernel forgot it
      already, or will: that is what unregistering wanted).

    **Waiting** (abstract). ``poll(timeout)`` blocks at most ``timeout`` seconds (None: until something is
    ready; 0: not at all; never much longer than asked, and never returns early *and* empty over and over:
    that is a busy loop) and returns a list of ``(fd, events)`` where events may contain READ, WRITE, ERROR
    and INVALID bits (others are ignored). EINTR is not an error (return what is ready, possibly nothing).
    The core masks what ``poll`` reports with what it registered, so a backend may report ERROR (or a
    direction) liberally. It reports INVALID only for an fd the kernel says is not open.

    **Optional**, with documented defaults:

    - ``name``: the backend name used in every error message.
    - ``fileno()``: the kernel object's fd (epoll/kqueue), or None.
    - ``make_waker()``: how ``call_soon_threadsafe`` interrupts a wait.
    - ``drives_loop`` / ``drive(iteration)``: for a backend that cannot block in ``poll``.
    - ``reports_closed_fds``: the backend always reports a closed fd as INVALID (the core then trusts it).
    - ``native_wait``: a :class:`multiloop.readiness.NativeWait` (compiled) that hands events to the core in C
      instead of returning them; the core then calls it instead of ``poll`` on most passes, while its
      ``active`` is true. It must report exactly what ``poll`` would. Default None.
    - ``discard_stale(fds)``: called when ``poll`` reported fds the core has no registration for.
    - ``statistics()``: counters shown in ``loop.stats().backend_stats``.
    - ``close()`` releases the kernel object; after it, no method is called again.
    """

    #: The backend name, used in every error message.
    name: str = "?"
    #: True when the core must call :meth:`drive` from ``run_forever`` instead of running its own loop
    #: around :meth:`poll`. A class attribute the core reads once per ``run_forever``.
    drives_loop: ClassVar[bool] = False
    #: True when ``poll`` never reports an fd that was closed while registered as anything but INVALID (or
    #: never reports it again): poll(2), select(), kqueue (closing drops the knotes). Then the core skips its
    #: own check, which otherwise samples a few reported fds with ``fstat`` every 256th pass to end the
    #: busy loop a closed fd would cause (epoll reports a closed fd whose file a ``dup()`` keeps open as
    #: ready, forever). Claiming it wrongly costs that protection; the default is the safe answer.
    reports_closed_fds: ClassVar[bool] = False
    #: See "Optional" above: None, or a multiloop.readiness.NativeWait (typed loosely: compiled builds only).
    native_wait: Any = None

    @abc.abstractmethod
    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` (not watched yet) for ``events`` (READ and/or WRITE)."""

    @abc.abstractmethod
    def modify(self, fd: int, events: int) -> None:
        """Change the watched directions of a watched ``fd`` to ``events`` (non-zero)."""

    @abc.abstractmethod
    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``. Must not fail because the fd was closed meanwhile."""

    @abc.abstractmethod
    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait at most ``timeout`` seconds (None: no limit) and return the ready ``(fd, events)``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the poller holds (kernel object, tasks). Called once, when the loop closes."""

    def fileno(self) -> int | None:
        """The kernel object's fd (epoll/kqueue), or None when the backend has none."""
        return None

    def make_waker(self) -> Callable[[], None] | None:
        """A callable that interrupts a wait in progress, or None (the default) to let the core register an
        eventfd/self-pipe like any other fd, which is right for every poller that blocks in ``poll``.

        The callable is called from any thread and from signal handlers; it must be cheap and must not
        block. The core calls it only while the loop may be blocked, and at most once until the wait ends."""
        return None

    def drive(self, iteration: Iteration) -> None:
        """Own the loop's outer loop; called by ``run_forever`` when :attr:`drives_loop` is True.

        Repeat until ``iteration.dispatch`` returns False: ask ``iteration.timeout()`` how long the wait may
        block, wait in the backend's own way (a host loop's sleep; a call to :meth:`make_waker`'s callable
        must end it early), then hand the ready fds to ``iteration.dispatch(events)``. Exceptions raised by
        ``dispatch`` (KeyboardInterrupt, SystemExit from a callback) must propagate out of ``drive``.

        The default is exactly that loop around :meth:`poll`, which is what the core runs itself for a
        blocking poller; it is a working reference, and a base for backends that wrap another one."""
        timeout = iteration.timeout
        dispatch = iteration.dispatch
        poll = self.poll
        while dispatch(poll(timeout())):
            pass

    def discard_stale(self, fds: list[int]) -> None:  # noqa: B027 - optional; doing nothing is the default
        """``poll`` reported ``fds``, for which the core holds no registration (they were unregistered).

        A kernel whose registrations can outlive ``unregister`` (epoll: a ``dup()``ed fd closed behind the
        loop's back) keeps reporting such an fd, and a level-triggered wait then never blocks again. Such a
        backend must stop the reports here (epoll rebuilds its set from its own registration map). The
        default does nothing, which is right for a poller that forgets an fd in ``unregister`` (select,
        poll, kqueue, trio) and so never reports one the core does not know."""

    def statistics(self) -> Mapping[str, int]:
        """Counters about this poller for observability: what only the backend knows (registrations it
        holds, kernel calls made, stale registrations found, rebuilds...). Shown as
        ``loop.stats().backend_stats``; must be cheap (no syscall). Default: none."""
        return {}


def translate_oserror(exc: OSError, backend: str, op: str, fd: int) -> PollerError:
    """The :class:`~multiloop.errors.PollerError` that says what an ``OSError`` from a registration call
    means, naming ``backend`` and ``fd``. ``op`` is the Poller method (``register``/``modify``/
    ``unregister``) or any verb. Use it as ``raise translate_oserror(exc, NAME, "register", fd) from None``.

    - EBADF -> :class:`~multiloop.errors.BadFdError` (the fd is not open);
    - EPERM -> :class:`~multiloop.errors.UnpollableFdError` (epoll's answer for regular files and
      directories: the core then treats the fd as always ready, as select() and poll() report it);
    - anything else -> :class:`~multiloop.errors.PollerError` carrying the errno.
    """
    action = _OPS.get(op, op)
    if exc.errno == _errno.EBADF:
        return BadFdError(f"{backend}: cannot {action} fd {fd}: it is not an open file descriptor (EBADF)",
                          backend=backend, fd=fd, errno=exc.errno)
    if exc.errno == _errno.EPERM:
        return UnpollableFdError(f"{backend}: cannot {action} fd {fd}: the kernel cannot poll this kind of "
                                 f"file (EPERM; regular files and directories are always ready)",
                                 backend=backend, fd=fd, errno=exc.errno)
    return PollerError(f"{backend}: cannot {action} fd {fd}: {exc.strerror or exc}", backend=backend, fd=fd,
                       errno=exc.errno)


_OPS = {"register": "watch", "modify": "change the watch on", "unregister": "stop watching"}


def check_fd_open(fd: int, backend: str, op: str = "register") -> None:
    """Raise :class:`~multiloop.errors.BadFdError` (via :func:`translate_oserror`) unless ``fd`` is open.

    For backends whose kernel accepts a closed fd at registration and fails later (select(): EBADF for the
    whole wait; poll(): POLLNVAL): checking now gives the error at the call that introduced the bad fd."""
    try:
        os.fstat(fd)
    except OSError as exc:
        raise translate_oserror(exc, backend, op, fd) from None


ProbeFn = Callable[[], "str | None"]
FactoryFn = Callable[[], Poller]


@dataclass(frozen=True)
class Backend:
    """Describes one backend to the registry. Built-ins and plugins return these from the hook.

    ``probe`` checks the running platform for real (create and close the kernel object, test a feature) and
    returns None when the backend can run here, or a sentence saying why not. It may also raise; the
    exception becomes the reason. ``priority``: higher wins automatic selection. ``auto=False`` keeps a
    backend out of automatic selection (it must be named), as the trio bridge is.
    """

    name: str
    priority: int
    capabilities: frozenset[str]
    probe: ProbeFn
    factory: FactoryFn
    auto: bool = True
    description: str = ""
    #: Filled in by the registry: "built-in" or "<distribution> <version>".
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"backend name must be an identifier-like string, got {self.name!r}")
        unknown = set(self.capabilities) - CAPABILITIES
        if unknown:
            raise ValueError(f"backend {self.name!r} declares unknown capabilities {sorted(unknown)}; "
                             f"known: {sorted(CAPABILITIES)}")
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))


def check_capability_names(names: Iterable[str], what: str) -> frozenset[str]:
    """Validate a ``require=``/``avoid=`` style collection; a typo must not silently match nothing."""
    if isinstance(names, str):
        names = [n for n in names.replace(",", " ").split() if n]
    result = frozenset(names)
    unknown = result - CAPABILITIES
    if unknown:
        raise ValueError(f"{what}: unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
    return result
