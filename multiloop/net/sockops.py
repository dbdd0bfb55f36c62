"""The ``sock_*`` coroutines: one socket operation, awaited.

Facts and design:
- Most calls succeed at once (data already queued, send buffer not full), so each method tries the syscall
  first and registers a reader/writer only on EAGAIN: no registration, no future in the common case.
- On a blocking socket the "try first" call would block the whole loop, so they are refused with a
  ValueError always (stock asyncio checks only in debug mode).
- One fd has one reader and one writer slot. When the operation finishes or its task is cancelled, the
  registration is removed, unless another operation replaced it meanwhile (its handle was cancelled then).
- A non-blocking ``connect`` reports completion by writability; the outcome is in SO_ERROR.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from .connect import resolve
from .unix_streams import check_not_ssl_socket

_TRY_AGAIN = (BlockingIOError, InterruptedError)


class SockOpsMixin(asyncio.AbstractEventLoop):
    """sock_recv, sock_recv_into, sock_recvfrom, sock_recvfrom_into, sock_sendall, sock_sendto, sock_connect,
    sock_accept."""

    def _check_sock(self, sock: Any) -> None:
        check_not_ssl_socket(sock)
        if sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    def _wait_fd(self, fut: asyncio.Future[Any], fd: int, writing: bool, callback: Any, *args: Any) -> None:
        """Run ``callback(fut, *args)`` each time ``fd`` is ready until ``fut`` is done; unregister after."""
        owner = self._transports.get(fd)  # type: ignore[attr-defined]
        if owner is not None and not owner.is_closing():
            raise RuntimeError(f"File descriptor {fd} is used by transport {owner!r}")
        if writing:
            handle = self._add_writer(fd, callback, fut, *args)  # type: ignore[attr-defined]
            remove = self._remove_writer  # type: ignore[attr-defined]
        else:
            handle = self._add_reader(fd, callback, fut, *args)  # type: ignore[attr-defined]
            remove = self._remove_reader  # type: ignore[attr-defined]

        def done(_: asyncio.Future[Any]) -> None:
            if not handle.cancelled():  # cancelled: someone else took the slot, leave theirs alone
                remove(fd)

        fut.add_done_callback(done)

    # -------------------------------------------------------------------------------------- receiving
    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        self._check_sock(sock)
        try:
            return sock.recv(n)
        except _TRY_AGAIN:
            pass
        fut = self.create_future()
        self._wait_fd(fut, sock.fileno(), False, _retry, sock, "recv", (n,))
        return await fut  # type: ignore[no-any-return]

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        self._check_sock(sock)
        try:
            return sock.recv_into(buf)
        except _TRY_AGAIN:
            pass
        fut = self.create_future()
        self._wait_fd(fut, sock.fileno(), False, _retry, sock, "recv_into", (buf,))
        return await fut  # type: ignore[no-any-return]

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        self._check_sock(sock)
        try:
            return sock.recvfrom(bufsize)
        except _TRY_AGAIN:
            pass
        fut = self.create_future()
        self._wait_fd(fut, sock.fileno(), False, _retry, sock, "recvfrom", (bufsize,))
        return await fut  # type: ignore[no-any-return]

    async def sock_recvfrom_into(self, sock: socket.socket, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        self._check_sock(sock)
        if not nbytes:
            nbytes = len(buf)
        try:
            return sock.recvfrom_into(buf, nbytes)
        except _TRY_AGAIN:
            pass
        fut = self.create_future()
        self._wait_fd(fut, sock.fileno(), False, _retry, sock, "recvfrom_into", (buf, nbytes))
        return await fut  # type: ignore[no-any-return]

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
        self._check_sock(sock)
        try:
            return sock.sendto(data, address)
        except _TRY_AGAIN:
            pass
        fut = self.create_future()
        self._wait_fd(fut, sock.fileno(), True, _retry, sock, "sendto", (data, address))
        return await fut  # type: ignore[no-any-return]

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
            fut = None  # type: ignore[assignment]  # an exception would keep the future -> traceback cycle

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        self._check_sock(sock)
        try:
            conn, address = sock.accept()
            conn.setblocking(False)
            return conn, address
        except _TRY_AGAIN:
            pass
        fut = self.create_future()
        self._wait_fd(fut, sock.fileno(), False, _accept_ready, sock)
        return await fut  # type: ignore[no-any-return]


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
    finally:
        fut = None  # type: ignore[assignment]  # exc -> traceback -> this frame -> fut -> exc would be a cycle


def _accept_ready(fut: asyncio.Future[Any], sock: socket.socket) -> None:
    if fut.done():
        return
    try:
        conn, address = sock.accept()
        conn.setblocking(False)
    except _TRY_AGAIN:
        return
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        fut.set_exception(exc)
    else:
        fut.set_result((conn, address))
