"""The kqueue(2) backend: macOS's and the BSDs' O(ready) readiness API.

Some facts about kqueue that shape this file (from the FreeBSD and macOS kqueue(2) manuals, the BSD
kernels' pipe code, libevent's kqueue.c and libuv's fork handling):

- A registration ("knote") is keyed by *(ident, filter)*. Readability and writability of one fd are two
  separate filters, EVFILT_READ and EVFILT_WRITE, added and deleted independently; the kernel reports them as
  two separate kevents. So one multiloop interest mask is zero, one or two knotes, a change of mask touches
  only the filters whose bit changed, and ``poll`` merges the per-filter kevents into one ``(fd, events)``
  entry per fd. ``EV_ADD`` of an existing knote modifies it instead of duplicating it.
- One ``kevent()`` call applies a change list and then collects events. When a change fails and the event
  list has no room to report it (we pass ``nevents=0`` for registrations), the call fails with that errno
  *and the changes after the failing one are not applied*. A change list of two that fails is therefore
  retried one change at a time, so each filter gets its own outcome; ``EV_ADD`` is idempotent and a repeated
  ``EV_DELETE`` only says ENOENT, so the retry is safe. If a change must fail, the ones of the same call that
  did take effect are undone, so the kernel and our bookkeeping keep agreeing.
- Closing an fd deletes every knote on it (knotes are keyed by fd number, unlike epoll's *(fd, file)*; there
  are no ghost registrations after ``dup``). Deleting a filter of an fd that was closed therefore fails with
  EBADF (nothing open) or ENOENT (the number now names another file): both mean "already gone", which is what
  the delete wanted, and are ignored.
- EBADF when *adding* is a closed fd -> ``BadFdError``. We ``fstat`` the fd at ``register`` anyway (below),
  so that error names the fd and the call that introduced it. But NetBSD also answers EBADF, and FreeBSD
  EPIPE (libevent also meets EPERM), for adding EVFILT_WRITE to a pipe whose reader has gone. Such an fd is
  not bad, its peer is: we remember the refused direction and report the fd as ERROR on every ``poll``
  (without blocking) until that direction is dropped, so the callback runs and meets EPIPE on its write --
  what poll(2) and epoll report (POLLERR) for the same pipe.
- EV_EOF on a filter means that direction is finished: EVFILT_READ when the peer shut down its writing side
  or the last writer of a pipe closed (data may still be pending), EVFILT_WRITE when the reader went away.
  The filter fired, so we report that direction, and nothing more: after a peer's ``shutdown(SHUT_WR)`` the
  socket is still writable, and poll(2) reports that case as POLLIN (POLLRDHUP), not POLLHUP; waking the
  writer too would be a spurious wake-up. For sockets, EV_EOF carries the pending socket error (e.g.
  ECONNRESET) in ``fflags``: then the connection is dead in both directions and we add ERROR, so the core
  wakes every registered direction. A kevent with EV_ERROR (``data`` = errno) is reported as ERROR, or as
  INVALID when the errno is EBADF (the fd is not open: the core drops the registration and reports it).
- EVFILT_READ on a regular file (a vnode) fires only while the file offset is *before* end of file
  (``data`` = bytes left). At EOF it never fires, so an asyncio reader that read the last chunk would wait
  forever for the readiness that lets it see ``b""`` (``python app.py < file`` hangs; an empty file never
  reports anything). FreeBSD's NOTE_FILE_POLL would make it fire always, but macOS has no such flag (and
  uses that bit for NOTE_OOB). So ``register`` fstat()s the fd and refuses regular files and directories with
  ``UnpollableFdError``; the core then treats them as always ready -- what select() and poll() answer, and
  what every other multiloop backend does. The ``regular_files`` capability means exactly that: watching a
  plain file works, with poll(2)'s answer.
- macOS caveats: kqueue refuses some character devices with EINVAL (ptys before macOS 10.9, per CPython's
  asyncio documentation; libuv still falls back to a select() thread for "some files from /dev"). EINVAL
  when *registering* a character device therefore becomes ``UnpollableFdError``, and the core treats the
  device as always ready: the right answer for /dev/null and /dev/zero, a busy wait for a terminal that
  kqueue refuses (use the select backend for such a terminal). EINVAL for anything else, or when adding a
  direction to an fd already watched, is a ``PollerError`` naming the fd: for a pipe there is no safe guess
  ("always ready" would make asyncio's write-pipe transport believe its reader closed).
- A kqueue is *not inherited* by a child created with fork(): the child's copy of the descriptor number is
  closed by the kernel, so the number may soon name another file the child opens. Python >= 3.12.1 marks
  ``select.kqueue`` objects closed in the child (CPython gh-110395); older ones would ``close()`` that number
  from ``kqueue.close()`` or the object's finaliser and so close an unrelated file. In a forked child
  ``close()`` never closes the kqueue and, where Python does not know it is dead, keeps the object alive for
  the rest of the process so its finaliser cannot run. The backend is not ``fork_safe`` (the core refuses to
  use a loop in a forked child anyway; a fresh loop there gets a fresh kqueue).
- Level-triggered use (no EV_CLEAR), for the same reason as epoll: asyncio callbacks read "some" data and
  expect to be called again while more is there. The kernel supports edge-triggered notification
  (EV_CLEAR), hence the ``edge_triggered`` capability.
- Each filter produces at most one kevent per call, so an event list as long as the number of registered
  filters (at least 1: ``kevent()`` with ``nevents=0`` would not wait) collects everything ready in one call.
- Python's ``kqueue.control(changes, max_events, timeout)``: ``timeout=None`` blocks, a timeout is converted
  to a nanosecond timespec rounded up (no early wake-up and spin), a negative one is a ValueError (we pass 0),
  and EINTR is retried with the remaining time (PEP 475).

Design that follows: the translation is pure functions over plain data -- :func:`build_changes` turns an
old/new interest mask into a change list using an injectable ``kevent`` constructor, :func:`merge_events`
turns kevent records (anything with ident/filter/flags/fflags/data) into ``(fd, events)`` -- and the poller
takes an injectable kqueue factory, so all of it is tested on Linux with fakes. Constants come from
``select`` where it has them and from the BSD/macOS ``<sys/event.h>`` values otherwise, so this module
imports everywhere.
"""

from __future__ import annotations

import errno
import os
import select as _select
import stat
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from .. import hookimpl
from ..backend import ERROR, INVALID, READ, WRITE, Backend, Capability, Poller, translate_oserror
from ..errors import BackendUnavailableError, PollerError, UnpollableFdError

__all__ = [
    "NAME",
    "KqConstants",
    "HEADER",
    "HOST",
    "KeventRecord",
    "Change",
    "KqueuePoller",
    "build_changes",
    "merge_events",
    "wait_timeout",
    "max_events",
    "filter_count",
]

NAME = "kqueue"


@dataclass(frozen=True, slots=True)
class KqConstants:
    """The kqueue numbers this backend uses. Defaults are ``<sys/event.h>``'s, identical on macOS, FreeBSD,
    OpenBSD, NetBSD and DragonFly: filters are small negative numbers, flags are bits of a u_short."""

    filter_read: int = -1  # EVFILT_READ
    filter_write: int = -2  # EVFILT_WRITE
    ev_add: int = 0x0001  # EV_ADD
    ev_delete: int = 0x0002  # EV_DELETE
    ev_error: int = 0x4000  # EV_ERROR (returned; data = errno)
    ev_eof: int = 0x8000  # EV_EOF (returned; sockets: fflags = pending socket error)

    @classmethod
    def from_module(cls, module: object) -> KqConstants:
        """The values ``module`` (``select``) exposes, falling back to the header values it lacks."""
        d = cls()
        return cls(
            filter_read=getattr(module, "KQ_FILTER_READ", d.filter_read),
            filter_write=getattr(module, "KQ_FILTER_WRITE", d.filter_write),
            ev_add=getattr(module, "KQ_EV_ADD", d.ev_add),
            ev_delete=getattr(module, "KQ_EV_DELETE", d.ev_delete),
            ev_error=getattr(module, "KQ_EV_ERROR", d.ev_error),
            ev_eof=getattr(module, "KQ_EV_EOF", d.ev_eof),
        )


#: The header values (what the BSDs and macOS define).
HEADER = KqConstants()
#: What this interpreter uses: ``select``'s constants where it has kqueue, else the header values.
HOST = KqConstants.from_module(_select)


class KeventRecord(Protocol):
    """What :func:`merge_events` reads from a kevent (``select.kevent`` or a test's fake)."""

    ident: int
    filter: int
    flags: int
    fflags: int
    data: int


KeventFactory = Callable[[int, int, int], Any]  # kevent(ident, filter, flags), like select.kevent


class Change(NamedTuple):
    """A plain kevent: the change lists' element type where ``select.kevent`` does not exist (and a
    convenient record for tests). Compares equal field by field."""

    ident: int
    filter: int
    flags: int
    fflags: int = 0
    data: int = 0


# ----------------------------------------------------------------------------------------- pure translation
def filter_count(mask: int) -> int:
    """How many knotes an interest mask needs (one per direction)."""
    return (1 if mask & READ else 0) + (1 if mask & WRITE else 0)


def build_changes(fd: int, old: int, new: int, kevent: KeventFactory, k: KqConstants = HOST) -> list[Any]:
    """The change list that turns interest ``old`` into ``new`` for ``fd``: EV_ADD for each direction
    gained, EV_DELETE for each direction lost, nothing for a direction kept. READ's change comes first."""
    changes = []
    for bit, filt in ((READ, k.filter_read), (WRITE, k.filter_write)):
        if new & bit:
            if not old & bit:
                changes.append(kevent(fd, filt, k.ev_add))
        elif old & bit:
            changes.append(kevent(fd, filt, k.ev_delete))
    return changes


def merge_events(
    records: Iterable[KeventRecord], k: KqConstants = HOST, errors: Iterable[int] = ()
) -> list[tuple[int, int]]:
    """One ``(fd, events)`` entry per fd from per-filter kevents, in first-seen order.

    The filter's direction is reported (with EV_EOF too: the direction is finished, and the next I/O call
    says so); ERROR is added for EV_EOF carrying a socket error in ``fflags`` and for EV_ERROR kevents
    (INVALID instead when their errno is EBADF). An
    EV_ERROR with ``data == 0`` is an EV_RECEIPT acknowledgement, not an error, and is skipped. Filters other
    than read/write are ignored. ``errors``: fds to report as ERROR whatever the kernel said.
    """
    ready: dict[int, int] = dict.fromkeys(errors, ERROR)
    f_read, f_write = k.filter_read, k.filter_write
    ev_error, ev_eof = k.ev_error, k.ev_eof
    get = ready.get
    for ev in records:
        flags = ev.flags
        if flags & ev_error:
            if not ev.data:
                continue
            bits = INVALID if ev.data == errno.EBADF else ERROR
        else:
            filt = ev.filter
            if filt == f_read:
                bits = READ
            elif filt == f_write:
                bits = WRITE
            else:
                continue
            if flags & ev_eof and ev.fflags:
                bits |= ERROR
        fd = ev.ident
        ready[fd] = get(fd, 0) | bits
    return list(ready.items())


def wait_timeout(timeout: float | None) -> float | None:
    """``kqueue.control``'s timeout: None blocks; a negative value (a timer already due) becomes 0, which
    Python would otherwise reject with ValueError."""
    if timeout is None:
        return None
    return timeout if timeout > 0 else 0


def max_events(nfilters: int) -> int:
    """Event-list size for ``nfilters`` registered filters: each yields at most one kevent per call, and at
    least 1 so the call waits instead of returning at once."""
    return nfilters if nfilters > 0 else 1


def _missing_reason() -> str:
    here = "this is Linux" if sys.platform.startswith("linux") else f"this is {sys.platform}"
    return f"select.kqueue is missing: kqueue exists on macOS and the BSDs; {here}"


#: kqueue objects inherited through fork() on a Python that does not know they are dead: kept referenced so
#: their finaliser never closes an fd number the child may have reused (see the module docstring).
_INHERITED_KQUEUES: list[Any] = []

_GONE_AT_DELETE = (errno.ENOENT, errno.EBADF)
#: Errors at EV_ADD of a pipe/socket whose peer has gone (EBADF only if the fd is still open: NetBSD).
_PEER_GONE_AT_ADD = (errno.EPIPE, errno.EPERM)


# ---------------------------------------------------------------------------------------------- the poller
class KqueuePoller(Poller):
    """A Poller over one kqueue. ``kqueue_factory``/``kevent``/``constants``/``fstat`` are injectable so the
    translation runs against a fake kernel in tests; by default they are the ``select`` module's."""

    name = NAME
    reports_closed_fds = True  # see the module docstring

    def __init__(
        self,
        *,
        kqueue_factory: Callable[[], Any] | None = None,
        kevent: KeventFactory | None = None,
        constants: KqConstants = HOST,
        fstat: Callable[[int], os.stat_result] = os.fstat,
    ) -> None:
        if kqueue_factory is None:
            if not hasattr(_select, "kqueue"):
                raise BackendUnavailableError(
                    f"multiloop backend 'kqueue' is not available here: {_missing_reason()}", backend=NAME
                )
            kqueue_factory = _select.kqueue
        self._kq = kqueue_factory()
        self._kevent: KeventFactory = kevent if kevent is not None else getattr(_select, "kevent", Change)
        self._k = constants
        self._fstat = fstat
        self._pid = os.getpid()
        #: fd -> READ|WRITE interest as the core last set it (what the kernel has, minus refused directions).
        self._interest: dict[int, int] = {}
        self._nfilters = 0
        #: fd -> directions whose EV_ADD the kernel refused because the peer has gone; reported as ERROR.
        self._peer_gone: dict[int, int] = {}

    def fileno(self) -> int | None:
        return self._kq.fileno()

    # -- registration --------------------------------------------------------------------------------------
    def register(self, fd: int, events: int) -> None:
        try:
            mode = self._fstat(fd).st_mode
        except OSError as exc:
            raise translate_oserror(exc, self.name, "register", fd) from None
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            raise UnpollableFdError(
                f"{self.name}: cannot watch fd {fd}: it is a regular file or directory, for which EVFILT_READ never "
                f"reports end of file; it is treated as always ready, as select() and poll() report it",
                backend=self.name,
                fd=fd,
            )
        try:
            self._change(fd, 0, events, "register")
        except PollerError as exc:
            if exc.errno == errno.EINVAL and stat.S_ISCHR(mode):
                raise UnpollableFdError(
                    f"{self.name}: cannot watch fd {fd}: kqueue does not support this character device (EINVAL); "
                    f"it is treated as always ready, as select() reports /dev/null",
                    backend=self.name,
                    fd=fd,
                    errno=errno.EINVAL,
                ) from None
            raise

    def modify(self, fd: int, events: int) -> None:
        self._change(fd, self._interest.get(fd, 0), events, "modify")

    def unregister(self, fd: int) -> None:
        self._change(fd, self._interest.get(fd, 0), 0, "unregister")

    def _change(self, fd: int, old: int, new: int, op: str) -> None:
        """Apply the interest change old -> new for ``fd`` to the kernel, then to our bookkeeping."""
        changes = build_changes(fd, old, new, self._kevent, self._k)
        if changes:
            try:
                self._kq.control(changes, 0, 0)
            except OSError as exc:
                if len(changes) == 1:
                    self._settle(fd, changes[0], exc, op)
                else:
                    self._apply_one_by_one(fd, changes, op)
        self._set(fd, new)

    def _apply_one_by_one(self, fd: int, changes: list[Any], op: str) -> None:
        """The slow path after a multi-change call failed: the kernel stopped at the failing change, so
        apply each change alone; if one must fail, undo the others first so nothing is left half-done."""
        gone_before = self._peer_gone.get(fd)
        done: list[Any] = []
        for change in changes:
            try:
                self._kq.control([change], 0, 0)
            except OSError as exc:
                try:
                    self._settle(fd, change, exc, op)
                except PollerError:
                    self._undo(fd, done)
                    if gone_before is None:
                        self._peer_gone.pop(fd, None)
                    else:
                        self._peer_gone[fd] = gone_before
                    raise
            done.append(change)

    def _settle(self, fd: int, change: Any, exc: OSError, op: str) -> None:
        """Decide what a failed change means: return if it is harmless, raise a PollerError if not."""
        k = self._k
        if change.flags & k.ev_delete:
            if exc.errno in _GONE_AT_DELETE:
                return  # close() already dropped the knote
            raise translate_oserror(exc, self.name, op, fd) from None
        if exc.errno in _PEER_GONE_AT_ADD or (exc.errno == errno.EBADF and self._is_open(fd)):
            direction = READ if change.filter == k.filter_read else WRITE
            self._peer_gone[fd] = self._peer_gone.get(fd, 0) | direction
            return
        raise translate_oserror(exc, self.name, op, fd) from None

    def _undo(self, fd: int, done: list[Any]) -> None:
        k = self._k
        for change in reversed(done):
            flags = k.ev_add if change.flags & k.ev_delete else k.ev_delete
            try:
                self._kq.control([self._kevent(fd, change.filter, flags)], 0, 0)
            except OSError:
                pass  # best effort: we are already raising the error that matters

    def _is_open(self, fd: int) -> bool:
        try:
            self._fstat(fd)
        except OSError:
            return False
        return True

    def _set(self, fd: int, new: int) -> None:
        old = self._interest.pop(fd, 0)
        if new:
            self._interest[fd] = new
        self._nfilters += filter_count(new) - filter_count(old)
        gone = self._peer_gone.get(fd)
        if gone is not None:
            gone &= new  # a refused direction the core no longer wants is no longer an error
            if gone:
                self._peer_gone[fd] = gone
            else:
                del self._peer_gone[fd]

    # -- waiting -------------------------------------------------------------------------------------------
    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if self._peer_gone:
            # Something is in error already: look at the kernel, but do not block.
            records = self._kq.control(None, max_events(self._nfilters), 0)
            return merge_events(records, self._k, self._peer_gone)
        if timeout is not None and timeout <= 0:
            timeout = 0
        records = self._kq.control(None, self._nfilters or 1, timeout)
        if not records:
            return []
        return merge_events(records, self._k)

    def close(self) -> None:
        kq = self._kq
        if os.getpid() == self._pid:
            kq.close()
        elif not getattr(kq, "closed", False):
            # A forked child: the kernel did not give us this kqueue; its number may be someone else's now.
            _INHERITED_KQUEUES.append(kq)
        self._interest.clear()
        self._peer_gone.clear()
        self._nfilters = 0

    @property
    def registered_filters(self) -> int:
        """How many knotes the poller believes it holds (the event-list size of the next ``poll``)."""
        return self._nfilters

    def statistics(self) -> dict[str, int]:
        """``registered``: fds watched; ``filters``: knotes held; ``peer_gone``: fds with a direction the
        kernel refused because the peer has gone (reported as ERROR until dropped)."""
        return {"registered": len(self._interest), "filters": self._nfilters, "peer_gone": len(self._peer_gone)}


def _probe() -> str | None:
    if not hasattr(_select, "kqueue"):
        return _missing_reason()
    kq = _select.kqueue()
    try:
        kq.control(None, 1, 0)
    finally:
        kq.close()
    return None


@hookimpl
def multiloop_backends() -> list[Backend]:
    return [
        Backend(
            name=NAME,
            priority=40,  # epoll's tier: a platform has one or the other, never both
            capabilities=frozenset(
                {Capability.O1, Capability.UNLIMITED_FDS, Capability.REGULAR_FILES, Capability.EDGE_TRIGGERED}
            ),
            probe=_probe,
            factory=KqueuePoller,
            description="kqueue(2): macOS/BSD, O(ready fds) per wait",
        )
    ]
