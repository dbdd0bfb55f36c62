"""What the loop's socket-creating methods (TCP and Unix streams, datagrams, ``sock_*``) share: stock asyncio's
checks of the sockets and TLS arguments users pass, and what is done to a socket before it is bound.

Facts:
- The messages and exception types are stock asyncio's (CPython 3.13): user code and CPython's tests match on
  them. An ``ssl.SSLSocket`` is refused everywhere: the loop must own the TLS layer, and readiness of the fd
  says nothing about a TLS socket's own buffers.
- ``SO_REUSEPORT`` can be missing from the socket module, or defined and refused by the kernel; stock reports
  both as ValueError.
- ``bind()`` on a path fails with EADDRINUSE while a file exists there, even the socket file of a server that
  died. A stale *socket* file is removed first; never any other kind of file (a typo in the path must not
  delete someone's data). A path starting with NUL is Linux's abstract namespace: there is no file.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import stat
from typing import Any

logger = logging.getLogger("asyncio")


def check_not_ssl_socket(sock: Any) -> None:
    """TypeError for an ``ssl.SSLSocket``."""
    if isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def check_ssl_args(ssl: Any, ssl_handshake_timeout: Any, ssl_shutdown_timeout: Any) -> None:
    """ValueError for TLS timeouts given without TLS."""
    if ssl_handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if ssl_shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def set_reuseport(sock: socket.socket) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError("reuse_port not supported by socket module, SO_REUSEPORT defined but not "
                         "implemented.") from None


def is_abstract(path: Any) -> bool:
    """A Linux abstract-namespace socket address (no file behind it)."""
    return len(path) > 0 and path[0] in (0, "\0")


def remove_stale_unix_socket(path: Any) -> None:
    """Remove the socket file at ``path`` if there is one (only a socket, never another kind of file)."""
    if is_abstract(path):
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        # The directory may allow creating a socket but not inspecting it; bind() will tell.
        logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
