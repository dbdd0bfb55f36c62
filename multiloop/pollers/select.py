"""The select(2) backend: portable, no kernel object, limited to fds below FD_SETSIZE.

Facts about select():
- It takes three bitsets of size FD_SETSIZE (1024 with glibc, fixed at compile time): an fd >= FD_SETSIZE
  cannot be watched at all; CPython raises ``ValueError: filedescriptor out of range in select()``. We refuse
  such an fd at registration, naming it, instead of failing on the next wait for every fd.
- The cost is O(highest fd) per call in the kernel and O(registered fds) in Python building the lists.
- A closed fd in a set makes the whole call fail with EBADF, naming no fd. We check fds at registration,
  and when one is closed behind our back we find it (``fstat`` of each registered fd: only on this path) and
  report it as INVALID; the core drops its registration and reports it once, and the next wait works.
- Regular files are always ready, which is the right answer for them.
- No kernel state: nothing to re-create after fork().
"""

from __future__ import annotations

import errno
import os
import select as _select

from .. import hookimpl
from ..backend import INVALID, READ, WRITE, Backend, Capability, Poller, check_fd_open
from ..errors import FdLimitError

NAME = "select"
#: glibc's FD_SETSIZE (and macOS's default); CPython does not expose it.
FD_SETSIZE = 1024


class SelectPoller(Poller):
    name = NAME
    reports_closed_fds = True  # see the module docstring

    def __init__(self) -> None:
        self._events: dict[int, int] = {}
        self._readers: set[int] = set()
        self._writers: set[int] = set()
        self._ebadf_scans = 0

    def _set(self, fd: int, events: int) -> None:
        self._events[fd] = events
        (self._readers.add if events & READ else self._readers.discard)(fd)
        (self._writers.add if events & WRITE else self._writers.discard)(fd)

    def register(self, fd: int, events: int) -> None:
        if fd >= FD_SETSIZE:
            raise FdLimitError(f"{self.name}: cannot watch fd {fd}: select() only handles fds below FD_SETSIZE "
                               f"({FD_SETSIZE}); use a backend with the 'unlimited_fds' capability "
                               f"(poll, epoll)", backend=self.name, fd=fd, errno=errno.EINVAL)
        check_fd_open(fd, self.name, "register")
        self._set(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self._set(fd, events)

    def unregister(self, fd: int) -> None:
        del self._events[fd]
        self._readers.discard(fd)
        self._writers.discard(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if timeout is not None and timeout < 0:
            timeout = 0
        try:
            r, w, _ = _select.select(self._readers, self._writers, (), timeout)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            return self._bad_fds()
        if not w:
            return [(fd, READ) for fd in r]
        ready: dict[int, int] = dict.fromkeys(r, READ)
        for fd in w:
            ready[fd] = ready.get(fd, 0) | WRITE
        return list(ready.items())

    def _bad_fds(self) -> list[tuple[int, int]]:
        self._ebadf_scans += 1
        bad = []
        for fd in self._events:
            try:
                os.fstat(fd)
            except OSError:
                bad.append((fd, INVALID))
        return bad

    def close(self) -> None:
        self._events.clear()
        self._readers.clear()
        self._writers.clear()

    def statistics(self) -> dict[str, int]:
        """``registered``: fds in the sets; ``ebadf_scans``: waits that failed with EBADF and made us look
        for the closed fd(s)."""
        return {"registered": len(self._events), "ebadf_scans": self._ebadf_scans}


def _probe() -> str | None:
    if not hasattr(_select, "select"):
        return "this Python has no select.select"
    _select.select([], [], [], 0)
    return None


@hookimpl
def multiloop_backends() -> list[Backend]:
    return [Backend(
        name=NAME, priority=10,
        capabilities=frozenset({Capability.REGULAR_FILES, Capability.FORK_SAFE}),
        probe=_probe, factory=SelectPoller,
        description="select(2): portable, fds < FD_SETSIZE only, O(n) per wait",
    )]
