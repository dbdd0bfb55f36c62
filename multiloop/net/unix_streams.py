"""Unix stream sockets: create_unix_connection and create_unix_server.

Facts:
- ``bind()`` on a path fails with EADDRINUSE while a file exists there, even the socket file of a server that
  died. So a server removes a stale *socket* file first; it never removes any other kind of file (a typo in
  the path must not delete someone's data).
- On Linux a path starting with a NUL byte is in the abstract namespace: no file, nothing to clean up.
- ``cleanup_socket`` (3.13; accepted on every Python): on close, unlink the socket file, but only if it is
  still ours: another server may have replaced it since, which we tell by the inode recorded at bind time.
  It defaults to True from 3.13 on and to False before, because stock asyncio before 3.13 leaves the file
  (and 3.11/3.12 code, CPython's own tests among it, removes it itself).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import stat
import sys
from collections.abc import Callable
from typing import Any

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover
    _ssl = None  # type: ignore[assignment]

from .server import Server

logger = logging.getLogger("asyncio")

#: Stock asyncio removes the socket file on close from 3.13 on (see the module docstring).
CLEANUP_SOCKET_DEFAULT = sys.version_info >= (3, 13)


def check_not_ssl_socket(sock: Any) -> None:
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _is_abstract(path: Any) -> bool:
    return len(path) > 0 and path[0] in (0, "\0")


def _is_unix_stream(sock: socket.socket) -> bool:
    return sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM


class UnixStreamsMixin(asyncio.AbstractEventLoop):
    """create_unix_connection / create_unix_server."""

    async def create_unix_connection(self, protocol_factory: Callable[[], Any], path: Any = None, *,
                                     ssl: Any = None, sock: socket.socket | None = None,
                                     server_hostname: str | None = None,
                                     ssl_handshake_timeout: float | None = None,
                                     ssl_shutdown_timeout: float | None = None) -> tuple[Any, Any]:
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if not _is_unix_stream(sock):
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            check_not_ssl_socket(sock)
            sock.setblocking(False)
        return await self._create_connection_transport(  # type: ignore[attr-defined,no-any-return]
            sock, protocol_factory, ssl, server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def create_unix_server(self, protocol_factory: Callable[[], Any], path: Any = None, *,
                                 sock: socket.socket | None = None, backlog: int = 100, ssl: Any = None,
                                 ssl_handshake_timeout: float | None = None,
                                 ssl_shutdown_timeout: float | None = None, start_serving: bool = True,
                                 cleanup_socket: bool = CLEANUP_SOCKET_DEFAULT) -> Server:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = _bind_unix(path)
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if not _is_unix_stream(sock):
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            check_not_ssl_socket(sock)
        unix_path, ino = None, 0
        if cleanup_socket:
            bound = sock.getsockname()
            if bound and not _is_abstract(bound):
                try:
                    ino = os.stat(bound).st_ino
                    unix_path = bound
                except FileNotFoundError:
                    pass
        sock.setblocking(False)
        server = Server(self, [sock], protocol_factory, ssl, backlog, ssl_handshake_timeout,
                        ssl_shutdown_timeout)
        if unix_path is not None:
            listener = server._listeners[0]  # type: ignore[index]
            listener.unix_path, listener.unix_ino = unix_path, ino
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        return server


def _bind_unix(path: Any) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if not _is_abstract(path):
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.remove(path)  # a stale socket of a server that is gone
        except FileNotFoundError:
            pass
        except OSError as err:
            # The directory may allow creating a socket but not inspecting it; bind() will tell.
            logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
        raise
    except BaseException:
        sock.close()
        raise
    return sock
