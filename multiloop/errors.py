"""Exceptions multiloop raises, all naming the backend (and fd) they concern.

Why a hierarchy of our own: users need to tell "the backend you asked for does not exist" from "it exists but
cannot run here" from "this fd cannot be watched", and each also subclasses the builtin exception that stock
asyncio would raise in the same situation (LookupError, RuntimeError, ValueError, OSError), so code written for
stock asyncio keeps catching what it caught before.
"""

from __future__ import annotations

import errno as _errno
from typing import Any


class MultiloopError(Exception):
    """Base class of every multiloop-specific error."""


class BackendError(MultiloopError):
    """An error that concerns one backend; ``backend`` holds its name (or None)."""

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend


class UnknownBackendError(BackendError, LookupError):
    """No backend of that name is registered (built-in or entry point)."""


class BackendUnavailableError(BackendError, RuntimeError):
    """The backend exists but its probe failed on this platform, or it lacks a required capability."""


class NoBackendAvailableError(BackendUnavailableError):
    """No registered backend satisfies the request (require=/avoid=, probes)."""


class PollerError(BackendError, OSError):
    """A poller refused an fd operation. Also an OSError, carrying the errno the kernel gave (if any)."""

    def __init__(self, message: str, *, backend: str | None = None, fd: int | None = None,
                 errno: int | None = None) -> None:
        OSError.__init__(self, errno if errno is not None else _errno.EINVAL, message)
        self.backend = backend
        self.fd = fd
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:  # keep pickling (multiprocessing, executors) working
        return (_rebuild_poller_error, (type(self), self.message, self.backend, self.fd, self.errno))


def _rebuild_poller_error(cls: type[PollerError], message: str, backend: str | None, fd: int | None,
                          errno: int | None) -> PollerError:
    return cls(message, backend=backend, fd=fd, errno=errno)


class FdLimitError(PollerError, ValueError):
    """The fd is above what this backend can watch (select's FD_SETSIZE)."""


class BadFdError(PollerError):
    """The fd is closed, negative, or otherwise not a descriptor the kernel knows (EBADF)."""


class UnpollableFdError(PollerError):
    """The kernel cannot report readiness for this fd (epoll and regular files: EPERM).

    The core catches this and treats the fd as always ready, which is what select() and poll() do for
    regular files anyway.
    """


class LoopForkedError(MultiloopError, RuntimeError):
    """The loop was created in another process; a forked child must create a loop of its own."""
