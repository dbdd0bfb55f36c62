"""Helpers shared by the built-in pollers: turning kernel errors into multiloop errors that name the backend."""

from __future__ import annotations

import errno
import os

from ..errors import BadFdError, PollerError, UnpollableFdError

_OPS = {"register": "watch", "modify": "change the watch on", "unregister": "stop watching"}


def translate_oserror(exc: OSError, backend: str, op: str, fd: int) -> PollerError:
    """Map an OSError from a registration call to the PollerError subclass that says what went wrong."""
    action = _OPS.get(op, op)
    if exc.errno == errno.EBADF:
        return BadFdError(f"{backend}: cannot {action} fd {fd}: it is not an open file descriptor (EBADF)",
                          backend=backend, fd=fd, errno=exc.errno)
    if exc.errno == errno.EPERM:
        return UnpollableFdError(f"{backend}: cannot {action} fd {fd}: the kernel cannot poll this kind of "
                                 f"file (EPERM; regular files and directories are always ready)",
                                 backend=backend, fd=fd, errno=exc.errno)
    return PollerError(f"{backend}: cannot {action} fd {fd}: {exc.strerror or exc}", backend=backend, fd=fd,
                       errno=exc.errno)


def require_open_fd(fd: int, backend: str, op: str) -> None:
    """select() and poll() accept closed fds at registration and fail (or report POLLNVAL) later; check now,
    so the error names the fd and the call that introduced it."""
    try:
        os.fstat(fd)
    except OSError as exc:
        raise translate_oserror(exc, backend, op, fd) from None
