"""Stream connections and servers over TCP: create_connection, create_server, connect_accepted_socket, and
the stream transport seams of :mod:`multiloop.seams` (``_make_socket_transport``,
``_create_connection_transport``, which Unix sockets in :mod:`.unix_streams` use too).

Argument checking follows stock asyncio (CPython 3.13) exactly, because user code and CPython's tests rely on
which error each mistake gives; 3.13-only arguments (``keep_alive``) are accepted on every Python. TLS is
someone else's job: with ``ssl=`` we call ``self._wrap_tls`` (see :mod:`.tls`) instead of making a plain
transport, and nothing else here knows about TLS.
"""

from __future__ import annotations

import asyncio
import collections.abc
import errno
import itertools
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from ..seams import ConnectionTracker, Loop
from ..transport_base import wait_made
from . import connect
from .server import Server
from .socketargs import check_not_ssl_socket, check_ssl_args, set_reuseport
from .transport import SocketTransport

logger = logging.getLogger("asyncio")

_HAS_IPV6 = hasattr(socket, "AF_INET6")


class StreamsMixin(Loop):
    """TCP create_connection / create_server / connect_accepted_socket."""

    def _make_socket_transport(self, sock: socket.socket, protocol: asyncio.BaseProtocol,
                               waiter: asyncio.Future[Any] | None = None, *, extra: dict[str, Any] | None = None,
                               server: ConnectionTracker | None = None) -> SocketTransport:
        """A stream transport over ``sock``: connection_made, then reading, then ``waiter`` resolved (all soon).
        RuntimeError if a live transport owns the socket's fd."""
        return SocketTransport(self, sock, protocol, waiter, extra, server)

    def _stop_serving(self, sock: socket.socket) -> None:
        """Stop watching ``sock`` and close it (stock asyncio's name; CPython's tests call it)."""
        self._fdtable.remove_reader(sock.fileno())
        sock.close()

    async def _create_connection_transport(
            self, sock: socket.socket, protocol_factory: Callable[[], asyncio.BaseProtocol], ssl: Any,
            server_hostname: str | None, server_side: bool = False, ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        sock.setblocking(False)
        protocol = protocol_factory()
        waiter = self.create_future()
        transport: asyncio.Transport
        if ssl:
            sslcontext = None if isinstance(ssl, bool) else ssl
            transport = self._wrap_tls(
                sock, protocol, sslcontext, waiter=waiter, server_side=server_side,
                server_hostname=server_hostname, extra=None, server=None,
                ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout)
        else:
            transport = self._make_socket_transport(sock, protocol, waiter)
        await wait_made(transport, waiter)
        return transport, protocol

    # ---------------------------------------------------------------------------------- connecting
    async def create_connection(self, protocol_factory: Callable[[], Any], host: Any = None, port: Any = None,
                                *, ssl: Any = None, family: int = 0, proto: int = 0, flags: int = 0,
                                sock: socket.socket | None = None, local_addr: Any = None,
                                server_hostname: str | None = None, ssl_handshake_timeout: float | None = None,
                                ssl_shutdown_timeout: float | None = None,
                                happy_eyeballs_delay: float | None = None, interleave: int | None = None,
                                all_errors: bool = False) -> tuple[Any, Any]:
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            # The host is the name to verify; without one the caller must say (server_hostname="" skips it).
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            check_not_ssl_socket(sock)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1  # happy eyeballs without interleaving would race two addresses of one family

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            infos = await connect.resolve(self, (host, port), family=family, type=socket.SOCK_STREAM,
                                          proto=proto, flags=flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            local_infos = None
            if local_addr is not None:
                local_infos = await connect.resolve(self, local_addr, family=family, type=socket.SOCK_STREAM,
                                                    proto=proto, flags=flags)
                if not local_infos:
                    raise OSError("getaddrinfo() returned empty list")
            if interleave:
                infos = connect.interleave(infos, interleave)
            errors: list[OSError] = []
            if happy_eyeballs_delay is None:
                for info in infos:
                    try:
                        sock = await connect.connect_one(self, errors, info, local_infos)
                        break
                    except OSError:
                        continue
            else:
                sock = await connect.race(
                    self, (_attempt(self, errors, info, local_infos) for info in infos), happy_eyeballs_delay)
            if sock is None:
                try:
                    raise connect.connection_error(errors, all_errors)
                finally:
                    errors = []  # break the traceback -> frame -> errors cycle
        else:
            if sock is None:
                raise ValueError("host and port was not specified and no sock specified")
            if sock.type != socket.SOCK_STREAM:
                # AF_UNIX stream sockets are accepted here too, as stock asyncio does.
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")

        transport, protocol = await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        if self.get_debug():
            logger.debug("%r connected to %s:%r: (%r, %r)", transport.get_extra_info("socket"), host, port,
                         transport, protocol)
        return transport, protocol

    async def connect_accepted_socket(self, protocol_factory: Callable[[], Any], sock: socket.socket, *,
                                      ssl: Any = None, ssl_handshake_timeout: float | None = None,
                                      ssl_shutdown_timeout: float | None = None) -> tuple[Any, Any]:
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        check_not_ssl_socket(sock)
        return await self._create_connection_transport(
            sock, protocol_factory, ssl, "", server_side=True, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    # ------------------------------------------------------------------------------------- serving
    # typeshed types the result as asyncio.base_events.Server, stock's concrete class; ours is an AbstractServer.
    async def create_server(  # type: ignore[override]
            self, protocol_factory: Callable[[], Any], host: Any = None, port: Any = None, *,
                            family: int = socket.AF_UNSPEC, flags: int = socket.AI_PASSIVE,
                            sock: socket.socket | None = None, backlog: int = 100, ssl: Any = None,
                            reuse_address: bool | None = None, reuse_port: bool | None = None,
                            keep_alive: bool | None = None, ssl_handshake_timeout: float | None = None,
                            ssl_shutdown_timeout: float | None = None, start_serving: bool = True) -> Server:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            check_not_ssl_socket(sock)

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            if host == "":
                hosts: list[Any] = [None]
            elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
                hosts = [host]
            else:
                hosts = list(host)
            results = await asyncio.gather(*(self._server_infos(h, port, family, flags) for h in hosts))
            # A host listed twice, or two names for one address, is bound once.
            infos = list(dict.fromkeys(itertools.chain.from_iterable(results)))
            sockets = self._bind_server_sockets(infos, reuse_address, reuse_port, keep_alive)
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sockets = [sock]
        for s in sockets:
            s.setblocking(False)
        server = Server(self, sockets, protocol_factory, ssl, backlog, ssl_handshake_timeout,
                        ssl_shutdown_timeout)
        if start_serving:
            await server.start_serving()  # listens, then yields once as stock asyncio does
        if self.get_debug():
            logger.info("%r is serving", server)
        return server

    async def _server_infos(self, host: Any, port: Any, family: int, flags: int) -> list[Any]:
        infos = await connect.resolve(self, (host, port), family=family, type=socket.SOCK_STREAM, flags=flags)
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos

    def _bind_server_sockets(self, infos: list[Any], reuse_address: Any, reuse_port: Any,
                             keep_alive: Any) -> list[socket.socket]:
        sockets: list[socket.socket] = []
        completed = False
        try:
            for af, socktype, proto, _, sa in infos:
                try:
                    sock = socket.socket(af, socktype, proto)
                except OSError:
                    # A family/type/protocol this system lacks (e.g. IPv6 compiled out): skip it.
                    if self.get_debug():
                        logger.warning("create_server() failed to create socket.socket(%r, %r, %r)",
                                       af, socktype, proto, exc_info=True)
                    continue
                sockets.append(sock)
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    set_reuseport(sock)
                if keep_alive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                if _HAS_IPV6 and af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    # Linux listens on both families through one v6 socket by default; we bind one socket
                    # per family, so a v6 socket must not also claim the v4 port.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                try:
                    sock.bind(sa)
                except OSError as err:
                    msg = f"error while attempting to bind on address {sa!r}: {str(err).lower()}"
                    if err.errno == errno.EADDRNOTAVAIL:
                        # The family is not enabled on this host (bpo-30945): skip that address.
                        sockets.pop()
                        sock.close()
                        if self.get_debug():
                            logger.warning(msg)
                        continue
                    raise OSError(err.errno, msg) from None
            if not sockets:
                raise OSError(f"could not bind on any address out of {[info[4] for info in infos]!r}")
            completed = True
        finally:
            if not completed:
                for sock in sockets:
                    sock.close()
        return sockets


def _attempt(loop: Loop, errors: list[OSError], info: Any, local_infos: Any) -> Callable[[], Any]:
    return lambda: connect.connect_one(loop, errors, info, local_infos)
