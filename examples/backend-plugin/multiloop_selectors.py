"""A multiloop backend built on the standard library's ``selectors.DefaultSelector`` (an example to copy).

Facts about ``selectors`` that shape this backend:

- ``DefaultSelector`` is the best selector of the platform: epoll on Linux, kqueue on macOS and the BSDs,
  else poll, else select. So this one module runs everywhere, with that kernel's costs and limits: the
  capabilities below are derived from which class ``DefaultSelector`` is (without creating one: the
  hook must not probe the platform; ``probe`` does).
- It speaks ``EVENT_READ``/``EVENT_WRITE``; multiloop speaks ``READ``/``WRITE`` (poll(2)'s bits). We
  translate both ways.
- It hides the kernel's "this fd is closed" answers: ``PollSelector`` turns POLLNVAL into READ|WRITE,
  epoll and kqueue drop a closed file silently, ``SelectSelector`` lets EBADF escape from ``select()``.
  We cannot report INVALID, so we do not declare ``reports_closed_fds``: the core's own defence covers us
  (it samples the fds we report every 256th pass and drops closed ones), so a closed fd costs a bounded
  burst of passes, not a busy loop.
- Its epoll flavour inherits epoll's stale registrations: after ``dup()`` + ``close()`` + unregister, the
  kernel keeps reporting the old fd number, and ``select()`` -- which drops events for fds it has no key
  for -- returns an empty list at once, every time. The core never sees those events (so the contract's
  ``discard_stale`` is never called for us); what we can see is a wait that ends *early and empty*, which
  nothing else causes (EINTR is retried with the remaining time, a wake-up is an event of its own). After a
  few in a row we rebuild: a fresh selector holding exactly what we registered, the old one closed.
- Regular files differ by kernel: epoll refuses them (EPERM), kqueue accepts them but never reports end of
  file, select/poll say "always ready". We refuse them everywhere with ``UnpollableFdError``, which makes
  the core treat them as always ready -- the one answer that works for ``python app.py < data.txt``.
- ``selectors`` raises ``KeyError`` for a double registration and ``ValueError`` for an fd that ``select()``
  cannot hold; multiloop wants ``PollerError`` subclasses naming the backend and the fd, and gives us
  ``multiloop.translate_oserror`` for the kernel's ``OSError``.

Check it with ``python -m multiloop check-backend selectors`` (after ``pip install .``), or before
installing with ``--plugin multiloop_selectors`` and this directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import errno
import os
import selectors
import stat
import time

import multiloop
from multiloop import READ, WRITE

NAME = "selectors"
#: Consecutive early, empty waits after which the selector is rebuilt (one can be a coincidence).
EARLY_EMPTY_LIMIT = 3


def _to_selectors(events: int) -> int:
    return (selectors.EVENT_READ if events & READ else 0) | (selectors.EVENT_WRITE if events & WRITE else 0)


class SelectorsPoller(multiloop.Poller):
    """multiloop's Poller contract on top of one ``selectors.DefaultSelector``."""

    name = NAME

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._interest: dict[int, int] = {}  # fd -> multiloop events: what a rebuild registers again
        self._early_empty = 0
        self._rebuilds = 0

    # -- registration ----------------------------------------------------------------------------------
    def register(self, fd: int, events: int) -> None:
        try:
            mode = os.fstat(fd).st_mode  # also the clear error for a closed fd, on every selector
        except OSError as exc:
            raise multiloop.translate_oserror(exc, NAME, "register", fd) from None
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            raise multiloop.UnpollableFdError(
                f"{NAME}: cannot watch fd {fd}: regular files and directories are always ready",
                backend=NAME, fd=fd, errno=errno.EPERM)
        try:
            self._selector.register(fd, _to_selectors(events))
        except OSError as exc:
            raise multiloop.translate_oserror(exc, NAME, "register", fd) from None
        except ValueError as exc:  # SelectSelector: an fd above FD_SETSIZE
            raise multiloop.FdLimitError(f"{NAME}: cannot watch fd {fd}: {exc}", backend=NAME, fd=fd,
                                         errno=errno.EINVAL) from None
        self._interest[fd] = events

    def modify(self, fd: int, events: int) -> None:
        try:
            self._selector.modify(fd, _to_selectors(events))
        except OSError:
            # The file we registered was closed and the number reused: selectors has already dropped its
            # key (it does on any failure). Register what is there now.
            self._interest.pop(fd, None)
            self.register(fd, events)
            return
        self._interest[fd] = events

    def unregister(self, fd: int) -> None:
        self._interest.pop(fd, None)
        try:
            self._selector.unregister(fd)  # ignores a kernel that forgot the fd already
        except KeyError:
            pass  # a failed modify() dropped it

    # -- waiting ---------------------------------------------------------------------------------------
    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        # selectors: None blocks, <= 0 does not, and the epoll/poll flavours round up to whole
        # milliseconds (a timer never fires early and spins). EINTR is retried (PEP 475).
        start = time.monotonic()
        ready = self._selector.select(timeout)
        if ready:
            self._early_empty = 0
            return [(key.fd, (READ if mask & selectors.EVENT_READ else 0)
                     | (WRITE if mask & selectors.EVENT_WRITE else 0)) for key, mask in ready]
        if timeout is None or (timeout > 0.001 and time.monotonic() - start < timeout / 2):
            self._early_empty += 1
            if self._early_empty >= EARLY_EMPTY_LIMIT:
                self._rebuild()
        else:
            self._early_empty = 0
        return []

    def _rebuild(self) -> None:
        """Replace the selector by a fresh one with the same registrations: closing the old one is the only
        way to drop a kernel registration whose fd number no longer reaches its file."""
        self._early_empty = 0
        old, self._selector = self._selector, selectors.DefaultSelector()
        old.close()
        self._rebuilds += 1
        for fd, events in list(self._interest.items()):
            try:
                self._selector.register(fd, _to_selectors(events))
            except (OSError, ValueError):
                del self._interest[fd]  # closed meanwhile: the core's sampling will find it

    def close(self) -> None:
        self._selector.close()
        self._interest.clear()

    # -- optional --------------------------------------------------------------------------------------
    def fileno(self) -> int | None:
        fileno = getattr(self._selector, "fileno", None)  # epoll/kqueue selectors have a kernel object
        return fileno() if fileno is not None else None

    def statistics(self) -> dict[str, int]:
        return {"registered": len(self._interest), "rebuilds": self._rebuilds}


def _capabilities() -> frozenset[str]:
    kind = selectors.DefaultSelector.__name__
    caps = set()
    if kind in ("EpollSelector", "KqueueSelector", "DevpollSelector"):
        caps |= {multiloop.Capability.O1, multiloop.Capability.UNLIMITED_FDS}
    elif kind == "PollSelector":
        caps |= {multiloop.Capability.UNLIMITED_FDS, multiloop.Capability.FORK_SAFE}
    else:
        caps |= {multiloop.Capability.FORK_SAFE}
    return frozenset(caps | {multiloop.Capability.REGULAR_FILES})  # refused, hence always ready


def _probe() -> str | None:
    """Create, use and close a selector for real: the backend is available only if that works here."""
    selector = selectors.DefaultSelector()
    try:
        selector.select(0)
    finally:
        selector.close()
    return None


@multiloop.hookimpl
def multiloop_backends() -> list[multiloop.Backend]:
    return [multiloop.Backend(
        name=NAME,
        priority=1,  # below every built-in: a user who wants it names it
        capabilities=_capabilities(),
        probe=_probe,
        factory=SelectorsPoller,
        auto=False,
        description=f"selectors.DefaultSelector ({selectors.DefaultSelector.__name__}): an example backend",
    )]
