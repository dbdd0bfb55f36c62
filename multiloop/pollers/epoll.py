"""The epoll(7) backend: Linux's O(ready) readiness API. The automatic choice on Linux.

Some facts about epoll that shape this file:

- An epoll set is keyed by *(fd number, open file description)*, not by fd number. Closing an fd removes its
  registration only when no other fd (a dup(), a forked child's copy) refers to the same file description.
  So "registered" is a fact about the kernel that our bookkeeping can only approximate.
- Consequently, after the user closes an fd without removing its reader and a new file gets the same number,
  ``EPOLL_CTL_MOD`` fails with ENOENT (the old registration vanished with the file): we fall back to
  ``EPOLL_CTL_ADD``. ``EPOLL_CTL_ADD`` failing with EEXIST means the kernel still has the registration our
  caller thought gone: we fall back to MOD. ``EPOLL_CTL_DEL`` failing with EBADF/ENOENT means the kernel
  already forgot it, which is what DEL wanted.
- epoll refuses regular files and directories with EPERM (they are always ready; there is nothing to wait
  for). We raise UnpollableFdError and the core treats such an fd as permanently ready, which is what
  select() and poll() report for them. Stock asyncio fails here (``python app.py < file``).
- An epoll instance is inherited across fork() and *shared* with the parent: a child that modifies it
  changes the parent's registrations. epoll is therefore not fork-safe; the core refuses to use a loop in
  a forked child (LoopForkedError) rather than corrupt the parent's state.
- EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP have the same values as poll(2)'s bits, which are multiloop's
  READ/WRITE/ERROR, so ``epoll.poll()``'s list goes to the core without per-event translation.
- Level-triggered mode is used: asyncio's callbacks read "some" data and expect to be called again if more
  is there; edge-triggered would require every callback to drain the fd.
- The Python wrapper retries on EINTR (PEP 475) and rounds the timeout up to whole milliseconds, so a timer
  does not fire early and spin.
"""

from __future__ import annotations

import errno
import select as _select

from .. import hookimpl
from ..backend import Backend, Capability, Poller
from ._common import translate_oserror

NAME = "epoll"
_GONE = (errno.EBADF, errno.ENOENT)


class EpollPoller(Poller):
    name = NAME
    max_fd = None

    def __init__(self) -> None:
        self._epoll = _select.epoll()
        self.poll = self._epoll.poll  # type: ignore[method-assign]  # the hot path: no wrapper frame

    def fileno(self) -> int | None:
        return self._epoll.fileno()

    def register(self, fd: int, events: int) -> None:
        try:
            self._epoll.register(fd, events)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                self._epoll.modify(fd, events)
                return
            raise translate_oserror(exc, NAME, "register", fd) from None

    def modify(self, fd: int, events: int) -> None:
        try:
            self._epoll.modify(fd, events)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                # The file we registered was closed; this fd number now names another file.
                self.register(fd, events)
                return
            raise translate_oserror(exc, NAME, "modify", fd) from None

    def unregister(self, fd: int) -> None:
        try:
            self._epoll.unregister(fd)
        except OSError as exc:
            if exc.errno not in _GONE:
                raise translate_oserror(exc, NAME, "unregister", fd) from None

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:  # replaced per instance in __init__
        return self._epoll.poll(timeout)

    def close(self) -> None:
        self._epoll.close()


def _probe() -> str | None:
    if not hasattr(_select, "epoll"):
        return "select.epoll is missing (epoll is Linux-only)"
    ep = _select.epoll()
    try:
        ep.poll(0)
    finally:
        ep.close()
    return None


@hookimpl
def multiloop_backends() -> list[Backend]:
    return [Backend(
        name=NAME, priority=40,
        capabilities=frozenset({Capability.O1, Capability.UNLIMITED_FDS, Capability.EDGE_TRIGGERED}),
        probe=_probe, factory=EpollPoller,
        description="epoll(7): Linux, O(ready fds) per wait",
    )]
