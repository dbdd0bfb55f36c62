"""The ``sock_*`` coroutines: one socket operation, awaited.

Facts and design:
- Most calls succeed at once (data already queued, send buffer not full), so each method tries the syscall
  first and registers a reader/writer only on EAGAIN: no registration, no future in the common case. That
  shape is :meth:`SockOpsMixin._sock_call`; the methods differ only in which socket method they name and
  which direction they wait for.
- On a blocking socket the "try first" call would block the whole loop, so they are refused with a
  ValueError always (stock asyncio checks only in debug mode). A TLS socket is refused too: its send/recv do
  TLS in the kernel's place, and readiness of the fd says nothing about them.
- One fd has one reader and one writer slot. When the operation finishes or its task is cancelled, the
  registration is removed, unless another operation replaced it meanwhile (its handle was cancelled then).
- A non-blocking ``connect`` reports completion by writability; the outcome is in SO_ERROR.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any

from ..seams import Loop
from .connect import resolve

_TRY_AGAIN = (BlockingIOError, InterruptedError)


def check_not_ssl_socket(sock: Any) -> None:
    """TypeError for an ``ssl.SSLSocket``: the loop must own the TLS layer (stock asyncio's check)."""
    if isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


class SockOpsMixin(Loop):
    """sock_recv, sock_recv_into, sock_recvfrom, sock_recvfrom_into, sock_sendall, sock_sendto, sock_connect,
    sock_accept."""

    def _check_sock(self, sock: Any) -> None:
        check_not_ssl_socket(sock)
        if sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    def _wait_fd(self, fut: asyncio.Future[Any], fd: int, writing: bool, callback: Callable[..., object],
                 *args: Any) -> None:
        """Run ``callback(fut, *args)`` each time ``fd`` is ready until ``fut`` is done; unregister after."""
        fdtable = self._fdtable
        fdtable.check_unowned(fd)
        if writing:
            handle = fdtable.add_writer(fd, callback, fut, *args)
            remove = fdtable.remove_writer
        else:
            handle = fdtable.add_reader(fd, callback, fut, *args)
            remove = fdtable.remove_reader

        def done(_: asyncio.Future[Any]) -> None:
            if not handle.cancelled():  # cancelled: someone else took the slot, leave theirs alone
                remove(fd)

        fut.add_done_callback(done)

    async def _sock_call(self, sock: socket.socket, writing: bool, method: str, *args: Any) -> Any:
        """``sock.<method>(*args)`` now if the kernel is ready, else once it is (waiting for writability if
        ``writing``, else readability)."""
        self._check_sock(sock)
        try:
            return getattr(sock, method)(*args)
        except _TRY_AGAIN:
            pass
        fut = self.create_future()
        self._wait_fd(fut, sock.fileno(), writing, _retry, sock, method, args)
        return await fut

    # -------------------------------------------------------------------------------------- receiving
    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        return await self._sock_call(sock, False, "recv", n)

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        return await self._sock_call(sock, False, "recv_into", buf)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        return await self._sock_call(sock, False, "recvfrom", bufsize)

    async def sock_recvfrom_into(self, sock: socket.socket, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        return await self._sock_call(sock, False, "recvfrom_into", buf, nbytes or len(buf))

    # ---------------------------------------------------------------------------------------- sending
    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        self._check_sock(sock)
        try:
            n = sock.send(data)
        except _TRY_AGAIN:
            n = 0
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        if n == len(view):
            return
        fut = self.create_future()
        self._wait_fd(fut, sock.fileno(), True, _send_rest, sock, view, [n])
        await fut

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        return await self._sock_call(sock, True, "sendto", data, address)

    # ------------------------------------------------------------------------------ connect / accept
    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        self._check_sock(sock)
        if sock.family == socket.AF_INET or (hasattr(socket, "AF_INET6") and sock.family == socket.AF_INET6):
            infos = await resolve(self, address, family=sock.family, type=sock.type, proto=sock.proto)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            address = infos[0][4]
        try:
            sock.connect(address)
            return
        except _TRY_AGAIN:
            # EINPROGRESS (or EINTR: the connect goes on in the background). Writable = finished.
            pass
        fut = self.create_future()
        self._wait_fd(fut, sock.fileno(), True, _connect_done, sock, address)
        try:
            await fut
        finally:
            del fut  # an exception would keep the future -> traceback cycle

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        conn, address = await self._sock_call(sock, False, "accept")
        conn.setblocking(False)
        return conn, address


def _retry(fut: asyncio.Future[Any], sock: Any, method: str, args: tuple[Any, ...]) -> None:
    if fut.done():
        return  # cancelled in a pass before this readiness was dispatched
    try:
        # Looked up on each try, not bound once: a wrapper or mock may swap the method in between.
        result = getattr(sock, method)(*args)
    except _TRY_AGAIN:
        return
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def _send_rest(fut: asyncio.Future[None], sock: socket.socket, view: memoryview, pos: list[int]) -> None:
    if fut.done():
        return
    start = pos[0]
    try:
        start += sock.send(view[start:])
    except _TRY_AGAIN:
        return
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        fut.set_exception(exc)
        return
    if start == len(view):
        fut.set_result(None)
    else:
        pos[0] = start


def _connect_done(fut: asyncio.Future[None], sock: socket.socket, address: Any) -> None:
    if fut.done():
        return
    try:
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            raise OSError(err, f"Connect call failed {address}")
    except _TRY_AGAIN:
        return
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        fut.set_exception(exc)
    else:
        fut.set_result(None)
