"""The core's per-fd record and the conversion of "file-like things" to fds, with errors that say what was
wrong and which backend was asked."""

from __future__ import annotations

import errno
from typing import Any

from .errors import PollerError


class InvalidFdError(PollerError, ValueError):
    """Not something that names an open file descriptor. A ValueError, as stock asyncio raises."""


class FdEntry:
    """What the loop wants from one fd: the reader and writer handles and the registered READ|WRITE mask.

    ``mask`` can have a direction whose handle is None only transiently; ``_dispatch`` reads these fields
    directly, which is why this is a slotted class rather than a tuple (no re-allocation on every change)."""

    __slots__ = ("reader", "writer", "mask")

    def __init__(self, mask: int) -> None:
        self.reader = None
        self.writer = None
        self.mask = mask

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
    return fd
