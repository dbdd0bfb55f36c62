"""The contract between the core and a backend: event flags, capabilities, the Poller, the descriptor.

A backend supplies only *waiting*: it is told which fds the core wants to read or write (``register``,
``modify``, ``unregister``) and asked which are ready (``poll``). Everything else -- scheduling, timers,
transports, servers -- lives in the core, so a backend is small and every backend behaves the same.

A backend that cannot block in a plain ``poll(timeout)`` call (the trio bridge runs inside ``trio.run``) still
implements the registration methods, and additionally provides ``drive(iteration)``, which owns the outer
loop: it asks ``iteration.timeout()`` how long it may wait, waits in its own way, and hands the ready fds to
``iteration.dispatch(events)``. The core's scheduler is reused unchanged; only the waiting step differs.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "READ", "WRITE", "ERROR", "Capability", "CAPABILITIES", "Poller", "Iteration", "Backend",
]

# The flag values are poll(2)'s and epoll(7)'s own (POLLIN == EPOLLIN, POLLOUT == EPOLLOUT, and the error bits),
# so the poll and epoll backends hand the kernel's answer to the core without translating each event in
# Python. Backends whose kernel speaks otherwise (select, kqueue) translate to these.

#: The fd is (or should be watched for being) readable.
READ = 0x001
#: The fd is (or should be watched for being) writable.
WRITE = 0x004
#: Error / hang-up / invalid fd (POLLERR | POLLHUP | POLLNVAL). Never registered; when reported, the core
#: wakes *every* direction registered for the fd, so the callback meets the error on its next I/O call --
#: what select() does, and what keeps a dead peer from being ignored.
ERROR = 0x008 | 0x010 | 0x020


class Capability:
    """Names of backend capabilities, modelled on libevent's ``event_method_feature`` and libev's flags."""

    #: Waiting costs O(ready fds), not O(registered fds) (epoll, kqueue; not select or poll).
    O1 = "o1"
    #: No FD_SETSIZE-style cap on the fd numbers that can be watched.
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
    """What the core hands to a backend's ``drive()``: one pass of the loop, split around the wait.

    The core implements this; a driving backend calls it. ``dispatch`` returns False once the loop has been
    asked to stop, at which point ``drive`` must return.
    """

    @abc.abstractmethod
    def timeout(self) -> float | None:
        """Seconds the wait may block: 0 when callbacks are ready, None when nothing is scheduled."""

    @abc.abstractmethod
    def dispatch(self, events: list[tuple[int, int]]) -> bool:
        """Run fd callbacks for ``events``, due timers and ready callbacks; False means "stop now"."""


class Poller(abc.ABC):
    """A readiness poller: the only thing a backend must supply.

    Contract (the core relies on it, tests check it on every backend):

    - ``register`` is only called for an fd that is not registered; ``modify``/``unregister`` only for one
      that is. ``events`` is a non-zero combination of READ and WRITE.
    - Errors are raised as :class:`multiloop.errors.PollerError` subclasses naming the backend and the fd:
      ``BadFdError`` (closed/negative fd), ``FdLimitError`` (above the backend's limit),
      ``UnpollableFdError`` (the kernel cannot watch this kind of file).
    - ``poll(timeout)`` blocks at most ``timeout`` seconds (None: until something is ready) and returns a
      list of ``(fd, events)`` where events may contain READ, WRITE and ERROR bits (others are ignored);
      EINTR is not an error (return what is ready, possibly nothing).
    - The core masks what ``poll`` reports with what it registered, so a backend may report ERROR (or a
      direction) liberally; it must never report an fd it has not been asked to watch *and* still holds.
    """

    #: The backend name, used in every error message.
    name: str = "?"

    @abc.abstractmethod
    def register(self, fd: int, events: int) -> None: ...

    @abc.abstractmethod
    def modify(self, fd: int, events: int) -> None: ...

    @abc.abstractmethod
    def unregister(self, fd: int) -> None: ...

    @abc.abstractmethod
    def poll(self, timeout: float | None) -> list[tuple[int, int]]: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def fileno(self) -> int | None:
        """The kernel object's fd (epoll/kqueue), or None when the backend has none."""
        return None

    def make_waker(self) -> Callable[[], None] | None:
        """A thread-safe callable that interrupts a wait in progress, or None to let the core use an
        eventfd/self-pipe registered like any other fd (right for every blocking poller)."""
        return None

    # ``drive(iteration: Iteration) -> None`` is optional; see the module docstring.


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
