"""The core's fd table: which callbacks wait for which fd, what the backend is told about it, and which
transport owns it. Also the conversion of "file-like things" to fds, with errors that say what was wrong and
which backend was asked.

Facts that shape it:
- One fd has at most one reader and one writer callback (asyncio's rule): adding one replaces and cancels the
  old handle, removing one direction keeps the other registered. The backend is told the union of the two
  directions, so a change of one direction is a ``modify``, and the last removal an ``unregister``.
- A backend refuses fds its kernel interface cannot watch (epoll: a regular file, EPERM) with
  :class:`~multiloop.errors.UnpollableFdError`. Such an fd is always ready for I/O, which is what select() and
  poll() report for it; we keep it in :attr:`FdTable.always_ready` and dispatch it on every pass.
- An fd used by a live transport must not get callbacks from user code (``add_reader`` would steal the
  transport's events); stock asyncio enforces this through ``loop._transports``. Ownership is recorded here,
  weakly (a transport dropped by its user is collected and warns "unclosed transport", it does not stay
  registered), and a closing transport no longer counts.
- In a process forked from the loop's, an epoll/kqueue object is shared with the parent: unregistering an fd
  here would remove the *parent's* registration. After a fork the table only forgets, it never tells the
  backend.
- A closed socket's ``fileno()`` is -1, yet code closes a socket and then calls ``remove_reader(sock)`` for
  it (anyio does, when a socket is closed while a receive waits). Stock asyncio's selector finds such an
  object by identity among its registrations. The public API therefore remembers the object it was given
  (:attr:`FdEntry.fileobj`) and the public removal looks a closed one up by identity.

Design: the core owns one :class:`FdTable` (``loop._fdtable``, declared in :mod:`multiloop.seams`) and reads
:attr:`FdTable.always_ready` directly on its hot path, and asks :meth:`FdTable.entry_of` for each event's entry
(compiled: a C array index beside the dict, see ``fdtable.pxd``); the containers are created once and never
rebound, and only this class changes them.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

try:
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # running as plain Python without Cython installed
    from . import _cython_shim as cython  # type: ignore[no-redef, unused-ignore]

from .backend import READ, WRITE, Poller
from .errors import BadFdError, PollerError, UnpollableFdError

if TYPE_CHECKING:
    from .seams import FdOwner

# Module globals read on every add/remove are C variables when compiled: on Python 3.12+ Cython cannot cache a
# Python-level global (dict versions are gone), so each read of one is a dict lookup (~140 instructions).
_Handle = cython.declare(object, asyncio.Handle)
# Compiled: asyncio's handles have the slots _fasthandles.pxd expects (see core.py).
_FAST = cython.declare(cython.bint, cython.compiled and ml_init_handles(_Handle, asyncio.TimerHandle))  # type: ignore[name-defined]  # noqa: F821
_READ = cython.declare(cython.long, READ)
_WRITE = cython.declare(cython.long, WRITE)


class InvalidFdError(PollerError, ValueError):
    """Not something that names an open file descriptor. A ValueError, as stock asyncio raises."""


class FdOutOfRangeError(InvalidFdError, OverflowError):
    """An int too large to be a file descriptor (a C int). Also an OverflowError: what the kernel interfaces
    raise for it, and what stock asyncio lets through."""


# File descriptors are C ints: the kernel interfaces cannot even take a larger number.
_FD_MAX = 2**31 - 1


class FdEntry:
    """What the loop wants from one fd: the reader and writer handles and the registered READ|WRITE mask.

    ``mask`` can have a direction whose handle is None only transiently; the core's dispatch reads these
    fields directly, which is why this is a slotted class rather than a tuple (no re-allocation on every
    change)."""

    __slots__ = ("reader", "writer", "mask", "fileobj")

    def __init__(self, mask: int) -> None:
        self.reader: asyncio.Handle | None = None
        self.writer: asyncio.Handle | None = None
        self.mask = mask
        #: The object (not an int) the public add_reader/add_writer was given for this fd, if any.
        self.fileobj: object = None

    def __repr__(self) -> str:
        return f"FdEntry(mask={self.mask}, reader={self.reader!r}, writer={self.writer!r})"


def fileobj_to_fd(fileobj: Any, backend: str) -> int:
    """An int fd, or an object with ``fileno()``; anything else raises InvalidFdError naming the backend."""
    if isinstance(fileobj, int) and not isinstance(fileobj, bool):
        fd = fileobj
    else:
        fileno = getattr(fileobj, "fileno", None)
        if fileno is None or isinstance(fileobj, bool):
            raise InvalidFdError(f"{backend}: Invalid file object: {fileobj!r} is neither an int file descriptor "
                                 f"nor an object with a fileno() method", backend=backend, errno=errno.EBADF)
        try:
            fd = int(fileno())
        except (AttributeError, TypeError, ValueError, OSError) as exc:
            raise InvalidFdError(f"{backend}: Invalid file object: {fileobj!r}.fileno() failed: {exc}",
                                 backend=backend, errno=errno.EBADF) from None
    if fd < 0:
        raise InvalidFdError(f"{backend}: Invalid file descriptor: {fd} (negative; a closed socket's "
                             f"fileno() is -1)", backend=backend, fd=fd, errno=errno.EBADF)
    if fd > _FD_MAX:
        raise FdOutOfRangeError(f"{backend}: Invalid file descriptor: {fd} (larger than any file descriptor, "
                                f"{_FD_MAX})", backend=backend, fd=fd, errno=errno.EBADF)
    return fd


class FdTable:
    """fd -> :class:`FdEntry`, kept in step with the backend's registrations, plus fd ownership.

    Implements :class:`multiloop.seams.FdRegistry`. ``loop`` is only the loop handles are created for;
    ``check_usable`` raises the loop's "closed"/"forked" error and is called before anything is added.
    """

    __slots__ = ("entries", "always_ready", "forked", "dead", "_owners", "_poller", "_loop", "_backend",
                 "_check_usable")

    def __init__(self, loop: asyncio.AbstractEventLoop, poller: Poller, backend: str,
                 check_usable: Callable[[], None]) -> None:
        #: fd -> what is registered for it (read directly by the core's dispatch).
        self.entries: dict[int, FdEntry] = {}
        #: fds the backend cannot watch (regular files on epoll): dispatched on every pass.
        self.always_ready: set[int] = set()
        #: Set in a forked child: forget registrations without telling the (shared) kernel object.
        self.forked = False
        #: fd -> [READ|WRITE mask, file object] of registrations the core dropped this pass because their fd
        #: was closed, until the core reports them (see LoopCore._drop_dead_fd); removing one cancels that.
        self.dead: dict[int, list[Any]] = {}
        #: fd -> weak reference to the transport that owns it. A plain dict of weak references, not a
        #: WeakValueDictionary: every sock_* call that waits asks "owned?" for an fd that has no owner, and
        #: WeakValueDictionary.get is Python code that raises and catches KeyError for a missing key (~3,000
        #: instructions, a twentieth of a sock ping-pong round trip). A dead reference (an owner collected
        #: without releasing) counts as no owner and is dropped when met.
        self._owners: dict[int, weakref.ref[FdOwner]] = {}
        self._poller = poller
        self._loop = loop
        self._backend = backend
        self._check_usable = check_usable

    def __dealloc__(self) -> None:
        if cython.compiled:
            ml_fdindex_free(cython.address(self._index))  # type: ignore[name-defined, attr-defined]  # noqa: F821

    def __len__(self) -> int:
        return len(self.entries)

    def entry_of(self, fd: int) -> FdEntry | None:
        """``fd``'s entry, or None: what the core's dispatch asks for every event. Compiled, an index into a C
        array kept beside :attr:`entries` (see ``fdtable.pxd``); interpreted, the dict."""
        if cython.compiled:
            return ml_fdindex_lookup(cython.address(self._index), fd, self.entries)  # type: ignore[name-defined, attr-defined]  # noqa: F821
        return self.entries.get(fd)

    def __contains__(self, fd: object) -> bool:
        return fd in self.entries

    # ------------------------------------------------------------------------------- registration
    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any,
                   context: contextvars.Context | None = None) -> asyncio.Handle:
        return self._add(fd, _READ, callback, args, context)

    def add_writer(self, fd: int, callback: Callable[..., object], *args: Any,
                   context: contextvars.Context | None = None) -> asyncio.Handle:
        return self._add(fd, _WRITE, callback, args, context)

    def remove_reader(self, fd: int) -> bool:
        return self._remove(fd, _READ)

    def remove_writer(self, fd: int) -> bool:
        return self._remove(fd, _WRITE)

    def reader(self, fd: int) -> asyncio.Handle | None:
        """The handle registered for reading ``fd``, or None."""
        entry = self.entries.get(fd)
        return None if entry is None else entry.reader

    def writer(self, fd: int) -> asyncio.Handle | None:
        """The handle registered for writing ``fd``, or None."""
        entry = self.entries.get(fd)
        return None if entry is None else entry.writer

    def _tell_backend(self, fd: int, entry: FdEntry | None, mask: int) -> None:
        """Tell the poller the new interest ``mask`` for ``fd`` (entry None: not registered yet)."""
        if fd in self.always_ready:
            return
        poller = self._poller
        try:
            if entry is None:
                poller.register(fd, mask)
            elif mask:
                poller.modify(fd, mask)
            else:
                poller.unregister(fd)
        except UnpollableFdError:
            if entry is not None or not mask:
                raise
            self.always_ready.add(fd)

    @cython.locals(entry=FdEntry)
    def _add(self, fd: int, direction: int, callback: Callable[..., object],
             args: tuple[Any, ...], context: contextvars.Context | None) -> asyncio.Handle:
        self._check_usable()
        if cython.compiled and _FAST and not self._loop.get_debug():
            # asyncio.Handle without its __init__ (see core.call_soon): registrations change on every partial write.
            handle = ml_new(_Handle, callback, args, self._loop, context, None)  # type: ignore[name-defined]  # noqa: F821
        else:
            handle = _Handle(callback, args, self._loop, context)
        entry = self.entries.get(fd)
        if entry is None:
            if cython.compiled:
                # Room in the fd index first (the one step here that can fail for want of memory), so that
                # nothing is registered that the index could not hold; None reads as "no entry".
                ml_fdindex_put(cython.address(self._index), fd, None)  # type: ignore[name-defined, attr-defined]  # noqa: F821
            self._tell_backend(fd, None, direction)
            entry = self.entries[fd] = FdEntry(direction)
            if cython.compiled:
                ml_fdindex_put(cython.address(self._index), fd, entry)  # type: ignore[name-defined, attr-defined]  # noqa: F821
            old = None
        else:
            if not entry.mask & direction:
                self._tell_backend(fd, entry, entry.mask | direction)
                entry.mask |= direction
            old = entry.reader if direction == _READ else entry.writer
        if direction == _READ:
            entry.reader = handle
        else:
            entry.writer = handle
        if old is not None:
            old.cancel()
        return handle

    @cython.locals(entry=FdEntry, mask=cython.int)
    def _remove(self, fd: int, direction: int) -> bool:
        entry = self.entries.get(fd)
        if entry is None or not entry.mask & direction:
            return False  # also every call once the loop is closed: the table is empty then
        if direction == _READ:
            handle, entry.reader = entry.reader, None
        else:
            handle, entry.writer = entry.writer, None
        mask = entry.mask & ~direction
        entry.mask = mask
        if not mask:
            del self.entries[fd]
            if cython.compiled:
                ml_fdindex_drop(cython.address(self._index), fd)  # type: ignore[name-defined, attr-defined]  # noqa: F821
        try:
            if not self.forked:
                self._tell_backend(fd, entry, mask)
        except BadFdError:
            # Closed already (a socket closed before its reader was removed): the kernel watches it no
            # more, which is what removing asked for; the other direction, if any, stays in the table
            # until it is removed too.
            pass
        finally:
            if not mask:
                self.always_ready.discard(fd)
            if handle is not None:
                if cython.compiled and _FAST and not self._loop.get_debug():
                    ml_cancel_quiet(handle)  # type: ignore[name-defined]  # noqa: F821  # made by _add: plain
                else:
                    handle.cancel()
        return handle is not None

    def clear(self) -> None:
        """Cancel every handle and forget every fd (the loop is closing; the backend is closed after)."""
        for entry in self.entries.values():
            if entry.reader is not None:
                entry.reader.cancel()
            if entry.writer is not None:
                entry.writer.cancel()
        self.entries.clear()
        if cython.compiled:
            ml_fdindex_clear(cython.address(self._index))  # type: ignore[name-defined, attr-defined]  # noqa: F821
        self.always_ready.clear()
        self.dead.clear()

    # ---------------------------------------------------------------------------------- ownership
    def claim(self, fd: int, owner: FdOwner) -> None:
        self.check_unowned(fd)
        self._owners[fd] = weakref.ref(owner)

    def release(self, fd: int, owner: FdOwner) -> None:
        if self.owner(fd) is owner:
            del self._owners[fd]

    def owner(self, fd: int) -> FdOwner | None:
        """The transport that owns ``fd``, closing or not, or None."""
        ref = self._owners.get(fd)
        if ref is None:
            return None
        owner = ref()
        if owner is None:
            del self._owners[fd]  # collected without releasing it
        return owner

    def check_unowned(self, fd: int, fileobj: Any = None) -> None:
        if fd not in self._owners:
            return  # the common case (sock_* calls): one dict lookup
        owner = self.owner(fd)
        if owner is not None and not owner.is_closing():
            raise RuntimeError(f"File descriptor {fd if fileobj is None else fileobj!r} is used by transport "
                               f"{owner!r} (multiloop backend {self._backend})")

    def public_fd(self, fileobj: Any) -> int:
        """The fd of ``fileobj`` for the public ``add_reader`` & co.: valid, and not owned by a live transport."""
        fd = fileobj_to_fd(fileobj, self._backend)
        self.check_unowned(fd, fileobj)
        return fd

    def remember_file(self, fd: int, fileobj: Any) -> None:
        """The public API registered ``fd`` as ``fileobj``: keep the object, so that removing it still works
        once it is closed (see the module docstring)."""
        if not isinstance(fileobj, int):
            entry = self.entries.get(fd)
            if entry is not None:
                entry.fileobj = fileobj

    def public_fd_to_remove(self, fileobj: Any) -> int:
        """:meth:`public_fd` for the public ``remove_reader``/``remove_writer``: a file object that no longer
        has an fd (closed) is found among the registrations by identity, as stock asyncio's selector does."""
        try:
            return self.public_fd(fileobj)
        except InvalidFdError:
            if hasattr(fileobj, "fileno"):  # a file object, closed now (never None or an int)
                for fd, entry in self.entries.items():
                    if entry.fileobj is fileobj:
                        return fd
                for fd, record in self.dead.items():
                    if record[1] is fileobj:
                        return fd
            raise

    def settle_dead(self, fd: int, direction: int) -> bool:
        """The owner removes ``direction`` of a registration dropped this pass as dead: it was cleaning up,
        not leaking; True if that direction was registered. Once no direction is left, no report is made."""
        record = self.dead.get(fd)
        if record is None or not record[0] & direction:
            return False
        record[0] &= ~direction
        if not record[0]:
            del self.dead[fd]
        return True
