"""Unix stream sockets: create_unix_connection and create_unix_server.

Facts:
- A server removes a stale *socket* file at its path before binding, never any other kind of file, and an
  abstract-namespace address (leading NUL, Linux) has no file at all (see :mod:`.socketargs`).
- ``cleanup_socket`` (3.13; accepted on every Python): on close, unlink the socket file, but only if it is
  still ours: another server may have replaced it since, which we tell by the inode recorded at bind time.
  It defaults to True from 3.13 on and to False before, because stock asyncio before 3.13 leaves the file
  (and 3.11/3.12 code, CPython's own tests among it, removes it itself).
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from ..seams import Loop
from .server import Server
from .socketargs import check_not_ssl_socket, check_ssl_args, is_abstract, remove_stale_unix_socket

#: Stock asyncio removes the socket file on close from 3.13 on (see the module docstring).
CLEANUP_SOCKET_DEFAULT = sys.version_info >= (3, 13)


def _path_or_socket(path: Any, sock: socket.socket | None, missing: str) -> Any:
    """Stock asyncio's checks of ``path``/``sock``: exactly one of them, and a socket must be a Unix stream
    socket without TLS. Returns the path as a str/bytes, or None when ``sock`` is to be used."""
    if path is not None:
        if sock is not None:
            raise ValueError("path and sock can not be specified at the same time")
        return os.fspath(path)
    if sock is None:
        raise ValueError(missing)
    if not (sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM):
        raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
    check_not_ssl_socket(sock)
    return None


class UnixStreamsMixin(Loop):
    """create_unix_connection / create_unix_server."""

    async def create_unix_connection(self, protocol_factory: Callable[[], Any], path: Any = None, *,
                                     ssl: Any = None, sock: socket.socket | None = None,
                                     server_hostname: str | None = None,
                                     ssl_handshake_timeout: float | None = None,
                                     ssl_shutdown_timeout: float | None = None) -> tuple[Any, Any]:
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        elif server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl")
        check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        path = _path_or_socket(path, sock, "no path and sock were specified")
        if path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            assert sock is not None  # checked by _path_or_socket
            sock.setblocking(False)
        return await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    # typeshed types the result as asyncio.base_events.Server, stock's concrete class; ours is an AbstractServer.
    async def create_unix_server(  # type: ignore[override]
            self, protocol_factory: Callable[[], Any], path: Any = None, *,
                                 sock: socket.socket | None = None, backlog: int = 100, ssl: Any = None,
                                 ssl_handshake_timeout: float | None = None,
                                 ssl_shutdown_timeout: float | None = None, start_serving: bool = True,
                                 cleanup_socket: bool = CLEANUP_SOCKET_DEFAULT) -> Server:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        path = _path_or_socket(path, sock, "path was not specified, and no sock specified")
        if path is not None:
            sock = _bind_unix(path)
        assert sock is not None  # checked by _path_or_socket
        unix_path, ino = None, 0
        if cleanup_socket:
            bound = sock.getsockname()
            if bound and not is_abstract(bound):
                try:
                    ino = os.stat(bound).st_ino
                    unix_path = bound
                except FileNotFoundError:
                    pass
        sock.setblocking(False)
        server = Server(self, [sock], protocol_factory, ssl, backlog, ssl_handshake_timeout,
                        ssl_shutdown_timeout, unlink_on_close=None if unix_path is None else (unix_path, ino))
        if start_serving:
            await server.start_serving()  # listens, then yields once as stock asyncio does
        return server


def _bind_unix(path: Any) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    remove_stale_unix_socket(path)  # a server that is gone may have left its socket file
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
