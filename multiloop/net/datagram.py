"""``loop.create_datagram_endpoint``: UDP over IPv4/IPv6 and Unix datagram sockets.

Facts:
- ``connect()`` on a datagram socket sends nothing: it only records the peer (and filters what ``recv``
  returns), so it completes immediately even on a non-blocking socket; we still handle EINPROGRESS-style
  answers rather than trust every platform on that.
- Asking for ``(host, port)`` may yield several (family, proto) pairs; stock asyncio pairs local and remote
  addresses by (family, proto), tries each usable pair in resolution order, and raises the first error if
  none works. We do the same.
- A Unix datagram socket bound to a path leaves that path behind when closed; binding again fails with
  EADDRINUSE, so a stale *socket* file at ``local_addr`` is removed first (never any other kind of file).
  Paths starting with NUL are Linux's abstract namespace and have no file.
- ``reuse_address`` is not accepted (a TypeError, as on 3.11+: SO_REUSEADDR on UDP lets another process
  steal the port's datagrams). ``allow_broadcast`` sets SO_BROADCAST and, as stock asyncio does, keeps
  the socket unconnected so replies from any address arrive; ``remote_addr`` is then only the default
  destination.

Design: the argument checks and messages follow the running Python's asyncio (the ``sock=`` type check
differs between 3.11 and 3.12+); name resolution goes through ``loop.getaddrinfo`` (numeric hosts resolved
inline, no thread hop). The transport lives in :mod:`multiloop.net.datagram_transport`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from ..seams import Loop
from ..transport_base import wait_made
from .datagram_transport import DatagramSocketTransport
from .socketargs import remove_stale_unix_socket, set_reuseport

logger = logging.getLogger("asyncio")

_HAS_AF_UNIX = hasattr(socket, "AF_UNIX")


def _check_user_socket(sock: socket.socket) -> None:
    # 3.13 accepts any non-stream socket (SOCK_RAW, SOCK_SEQPACKET...) and words the error differently;
    # 3.11 and 3.12 want SOCK_DGRAM exactly.
    if sys.version_info >= (3, 13):
        if sock.type == socket.SOCK_STREAM:
            raise ValueError(f"A datagram socket was expected, got {sock!r}")
    elif sock.type != socket.SOCK_DGRAM:
        raise ValueError(f"A UDP Socket was expected, got {sock!r}")


def _set_result_unless_done(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)


class DatagramMixin(Loop):
    """``create_datagram_endpoint``."""

    def _make_datagram_transport(self, sock: socket.socket, protocol: asyncio.BaseProtocol, address: Any = None,
                                 waiter: asyncio.Future[Any] | None = None,
                                 extra: dict[str, Any] | None = None) -> DatagramSocketTransport:
        """Stock asyncio's factory name: a datagram transport over ``sock`` (RuntimeError if a live transport
        owns its fd); ``address``, the only destination allowed."""
        return DatagramSocketTransport(self, sock, protocol, address, waiter, extra)

    async def create_datagram_endpoint(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        local_addr: Any = None,
        remote_addr: Any = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[asyncio.DatagramTransport, asyncio.BaseProtocol]:
        """Create a datagram endpoint; return ``(transport, protocol)`` once connection_made has run."""
        self._check_closed()
        r_addr = None
        own_sock = sock is None
        if sock is not None:
            _check_user_socket(sock)
            opts = {"local_addr": local_addr, "remote_addr": remote_addr, "family": family, "proto": proto,
                    "flags": flags, "reuse_port": reuse_port, "allow_broadcast": allow_broadcast}
            problems = ", ".join(f"{k}={v}" for k, v in opts.items() if v)
            if problems:
                raise ValueError(
                    f"socket modifier keyword arguments can not be used when sock is specified. ({problems})"
                )
            sock.setblocking(False)
        else:
            pairs = await self._datagram_address_pairs(local_addr, remote_addr, family, proto, flags)
            errors: list[OSError] = []
            for (fam, pro), (local_address, remote_address) in pairs:
                try:
                    sock, r_addr = await self._open_datagram_socket(
                        fam,
                        pro,
                        local_address if local_addr else None,
                        remote_address if remote_addr else None,
                        reuse_port,
                        allow_broadcast,
                    )
                except OSError as exc:
                    errors.append(exc)
                else:
                    break
            else:
                raise errors[0]

        try:
            protocol = protocol_factory()
            waiter = self.create_future()
            transport = self._make_datagram_transport(sock, protocol, r_addr, waiter)
        except BaseException:
            if own_sock:
                sock.close()
            raise
        await wait_made(transport, waiter)
        return transport, protocol

    async def _datagram_address_pairs(
        self, local_addr: Any, remote_addr: Any, family: int, proto: int, flags: int
    ) -> list[tuple[tuple[int, int], tuple[Any, Any]]]:
        """[((family, proto), (local address, remote address))] to try, in order."""
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            return [((family, proto), (None, None))]
        if _HAS_AF_UNIX and family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, str):
                    raise TypeError("string is expected")
            if local_addr:
                remove_stale_unix_socket(local_addr)
            return [((family, proto), (local_addr, remote_addr))]

        by_key: dict[tuple[int, int], list[Any]] = {}  # insertion order = resolution order
        for idx, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError("2-tuple is expected")
            infos = await self.getaddrinfo(
                addr[0], addr[1], family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags
            )
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            for fam, _, pro, _, address in infos:
                by_key.setdefault((fam, pro), [None, None])[idx] = address
        pairs = [
            (key, (pair[0], pair[1]))
            for key, pair in by_key.items()
            if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))
        ]
        if not pairs:
            raise ValueError("can not get address information")
        return pairs

    async def _open_datagram_socket(
        self,
        family: int,
        proto: int,
        local: Any,
        remote: Any,
        reuse_port: bool | None,
        allow_broadcast: bool | None,
    ) -> tuple[socket.socket, Any]:
        sock = socket.socket(family=family, type=socket.SOCK_DGRAM, proto=proto)
        try:
            if reuse_port:
                set_reuseport(sock)
            if allow_broadcast:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setblocking(False)
            if local is not None:
                sock.bind(local)
            if remote is not None and not allow_broadcast:
                await self._connect_datagram(sock, remote)
        except BaseException:
            sock.close()
            raise
        return sock, remote

    async def _connect_datagram(self, sock: socket.socket, address: Any) -> None:
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass
        fut = self.create_future()
        fd = sock.fileno()
        self._fdtable.add_writer(fd, _set_result_unless_done, fut)
        try:
            await fut
        finally:
            self._fdtable.remove_writer(fd)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, f"Connect call failed {address}: {os.strerror(err)}")
