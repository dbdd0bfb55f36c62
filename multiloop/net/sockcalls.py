"""One non-blocking socket call whose "would block" is a return value, not an exception.

Facts and design:
- The ``sock_*`` coroutines try the syscall before they wait (most calls find data queued or room to send).
  In a request/response exchange the receive mostly finds nothing yet, and socket.recv reports that by raising
  BlockingIOError, whose construction (strerror, decoded from the locale, and an OSError subclass instance) and
  catching cost about 5,000 instructions: a sixteenth of a ``sock_recv`` ping-pong round trip. Compiled,
  :func:`recv_now` makes the same recv(2) call and returns None instead (see ``sockcalls.pxd``).
- Only for an exact ``socket.socket`` (a subclass may override ``recv``, and then its ``recv`` is what must
  run) and an int size; anything else, and the pure-Python build, calls ``sock.recv``. The fd is asked of the
  socket on every call (``fileno()``): a closed socket's is -1, and recv(2) then fails with EBADF as
  socket.recv does.
"""

from __future__ import annotations

import socket
from typing import Any

try:
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # running as plain Python without Cython installed
    from .. import _cython_shim as cython  # type: ignore[no-redef, unused-ignore]

_Socket = cython.declare(object, socket.socket)  # a C variable when compiled: see core.py on module globals
_TRY_AGAIN = (BlockingIOError, InterruptedError)


def recv_now(sock: Any, n: Any) -> bytes | None:
    """``sock.recv(n)`` on a non-blocking socket, or None if nothing is queued (EAGAIN, EINTR)."""
    if cython.compiled and type(sock) is _Socket and type(n) is int and 0 <= n < 2**62:
        return ml_try_recv(sock.fileno(), n)  # type: ignore[name-defined]  # noqa: F821
    try:
        return sock.recv(n)
    except _TRY_AGAIN:
        return None
