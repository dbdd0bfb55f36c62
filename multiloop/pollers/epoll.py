"""The epoll(7) backend: Linux's O(ready) readiness API. The automatic choice on Linux.

Some facts about epoll that shape this file:

- An epoll set is keyed by *(fd number, open file description)*, not by fd number, and it does not keep the
  file alive. ``epoll_ctl`` turns the fd number into that pair by looking the number up *now*; events come
  back carrying only the number. Closing an fd removes its registration only when no other fd (a ``dup()``,
  a forked child's copy, an fd passed over a Unix socket) refers to the same file description.
- So after ``fd2 = dup(fd1); close(fd1)`` the registration *(fd1, file)* lives on, keeps reporting "fd1"
  whenever the file is ready, and can never be deleted: ``EPOLL_CTL_DEL`` on fd1 fails with EBADF (nothing
  open under that number) or ENOENT, or hits another file if the number was reused. In level-triggered mode
  such a registration makes every ``epoll_wait`` return at once: a busy loop at 100% CPU (trio's
  ``_io_epoll.py`` describes the same trap). The only ways out are EPOLLONESHOT (a stale registration fires
  once more, then stays silent because nobody can re-arm it) or closing the epoll set.
- After the user closes an fd without removing its reader and a new file gets the same number,
  ``EPOLL_CTL_MOD`` fails with ENOENT (the new file is not registered): we add it. ``EPOLL_CTL_ADD`` failing
  with EEXIST means the kernel still has the registration our caller thought gone: we modify it.
- epoll refuses regular files and directories with EPERM (they are always ready; there is nothing to wait
  for). We raise UnpollableFdError and the core treats such an fd as permanently ready, which is what
  select() and poll() report for them. Stock asyncio fails here (``python app.py < file``).
- An epoll instance is inherited across fork() and *shared* with the parent: a child that modifies it
  changes the parent's registrations. epoll is therefore not fork-safe; the core refuses to use a loop in
  a forked child (LoopForkedError) rather than corrupt the parent's state.
- EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP have the same values as poll(2)'s bits, which are multiloop's
  READ/WRITE/ERROR, so ``epoll.poll()``'s list goes to the core without per-event translation. epoll never
  reports POLLNVAL: a closed fd simply stops being reported.
- Level-triggered mode is used: asyncio's callbacks read "some" data and expect to be called again if more
  is there; edge-triggered would require every callback to drain the fd.
- The Python wrapper retries on EINTR (PEP 475) and rounds the timeout up to whole milliseconds, so a timer
  does not fire early and spin.

Design that follows: the stale-registration defence is *detection and rebuild*, not EPOLLONESHOT, because it
costs nothing on the hot path (measured: EPOLLONESHOT re-arming is one more ``epoll_ctl`` per event and a
Python loop over every wait's result; see benchmarks/FINDINGS.md). The poller keeps its own map of what it
asked the kernel for. A stale registration can only be born when a delete fails (EBADF/ENOENT: the fd was
closed behind the loop's back); such numbers are remembered as *suspect*. The kernel then betrays a stale
registration in one of two ways, and both lead to a rebuild -- a fresh epoll set filled from the map, the
old one closed, which drops every registration nobody can delete:

1. it reports an fd the core has no registration for: the core hands it to :meth:`discard_stale`;
2. a suspect number is registered again (a new file got the number): the old registration would report
   under the same number, so the set is rebuilt before the new file is added.

A rebuild costs one ``epoll_ctl`` per registered fd, and happens only after a program closed a watched fd
behind the loop's back *and* the file lived on elsewhere. ``poll`` is bound straight to the wait (no
wrapper frame): ``epoll.poll`` itself in pure Python, ``epoll_wait(2)`` on a stack buffer when compiled
(:mod:`multiloop.pollers.epollwait`), rebound when the set is replaced. An fd the core still watches that turns out closed during
a rebuild is reported INVALID by the next ``poll``, so the core drops it and says so.
"""

from __future__ import annotations

import errno
import select as _select
from typing import Any

from .. import hookimpl
from ..backend import INVALID, Backend, Capability, Poller, translate_oserror
from .epollwait import native_waiter, waiter

NAME = "epoll"
_GONE = (errno.EBADF, errno.ENOENT)


class EpollPoller(Poller):
    name = NAME

    def __init__(self) -> None:
        self._epoll = _select.epoll()
        # Compiled builds: the wait that hands events to the core in C (multiloop.readiness). Inactive while
        # a rebuild's INVALID reports wait in _pending: only poll() (then _poll_pending) reports those.
        self.native_wait = native_waiter(self._epoll)
        self.poll = self._fast_poll()  # type: ignore[method-assign]  # the hot path: no wrapper frame
        #: fd -> events as the kernel has them: what a rebuild registers again.
        self._interest: dict[int, int] = {}
        #: fd numbers whose delete failed: a registration of their old file may outlive us (see above).
        self._suspect: set[int] = set()
        #: (fd, INVALID) found by a rebuild, for the next poll.
        self._pending: list[tuple[int, int]] = []
        self._ctl_calls = 0
        self._stale_fds = 0
        self._rebuilds = 0

    def fileno(self) -> int | None:
        return self._epoll.fileno()

    def register(self, fd: int, events: int) -> None:
        if self._suspect and fd in self._suspect:
            # A new file got a number whose old file may still be registered: its events would be
            # reported under this number too. Start from a clean set.
            self._rebuild()
        self._ctl_calls += 1
        try:
            self._epoll.register(fd, events)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise translate_oserror(exc, self.name, "register", fd) from None
            self._ctl_calls += 1
            self._epoll.modify(fd, events)
        self._interest[fd] = events

    def modify(self, fd: int, events: int) -> None:
        self._ctl_calls += 1
        try:
            self._epoll.modify(fd, events)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise translate_oserror(exc, self.name, "modify", fd) from None
            # The file we registered was closed; this fd number now names another file. The old one's
            # registration is gone, or stale if the file lives on through a dup().
            del self._interest[fd]
            self._suspect.add(fd)
            self.register(fd, events)
            return
        self._interest[fd] = events

    def unregister(self, fd: int) -> None:
        self._interest.pop(fd, None)  # absent if a rebuild found the fd closed (reported INVALID)
        self._ctl_calls += 1
        try:
            self._epoll.unregister(fd)
        except OSError as exc:
            if fd == self._epoll.fileno():
                # The file was closed and a rebuild's new set took its number (EINVAL: a set cannot hold
                # itself). Its registration went with the old set.
                return
            if exc.errno not in _GONE:
                raise translate_oserror(exc, self.name, "unregister", fd) from None
            # Closed behind the loop's back: gone from the set, unless a dup() keeps the file alive.
            self._suspect.add(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:  # replaced per instance in __init__
        return self._epoll.poll(timeout)

    def _fast_poll(self) -> Any:
        """What ``poll`` is bound to on the fast path: compiled, the native wait's own list-returning ``wait``
        (one ``EpollWait`` per poller, rebound on a rebuild, not a second one per set); else ``epoll.poll``."""
        return self.native_wait.wait if self.native_wait is not None else waiter(self._epoll)

    def _poll_pending(self, timeout: float | None) -> list[tuple[int, int]]:
        """``poll`` for one call after a rebuild found closed fds: report them, then back to the fast path."""
        pending, self._pending = self._pending, []
        self.poll = self._fast_poll()  # type: ignore[method-assign]
        if self.native_wait is not None:
            self.native_wait.active = True
        return pending + self._epoll.poll(0)

    def discard_stale(self, fds: list[int]) -> None:
        """The core got events for ``fds`` and has no registration for them: stale registrations."""
        self._stale_fds += len(fds)
        for fd in fds:
            if fd in self._interest:  # we still had it (the core and we disagree): just delete it
                self.unregister(fd)
        self._rebuild()

    def _rebuild(self) -> None:
        """Replace the epoll set by a fresh one holding exactly ``_interest``; closing the old set is the
        only way to drop registrations whose fd number no longer reaches their file."""
        self._rebuilds += 1
        fresh = _select.epoll()
        closed = []
        for fd, events in self._interest.items():
            self._ctl_calls += 1
            try:
                fresh.register(fd, events)
            except OSError:
                closed.append(fd)  # closed behind the loop's back while the core still watches it
        old, self._epoll = self._epoll, fresh
        old.close()
        self._suspect.clear()
        for fd in closed:
            del self._interest[fd]
            self._suspect.add(fd)
            self._pending.append((fd, INVALID))
        if self.native_wait is not None:
            self.native_wait.rebind(fresh)
            self.native_wait.active = not self._pending
        self.poll = self._poll_pending if self._pending else self._fast_poll()  # type: ignore[method-assign]

    def close(self) -> None:
        self._epoll.close()
        self._interest.clear()
        self._suspect.clear()

    def statistics(self) -> dict[str, int]:
        """``registered``: fds in the epoll set; ``ctl_calls``: epoll_ctl calls; ``stale_fds``: events for
        fds the core no longer watched (stale registrations); ``rebuilds``: epoll sets replaced to drop them;
        ``suspect_fds``: closed fd numbers whose old file may still be registered."""
        return {"registered": len(self._interest), "ctl_calls": self._ctl_calls, "stale_fds": self._stale_fds,
                "rebuilds": self._rebuilds, "suspect_fds": len(self._suspect)}


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
