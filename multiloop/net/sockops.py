"""The ``sock_*`` coroutines: one socket operation, awaited.

Facts and design:
- Most calls succeed at once (data already queued, send buffer not full), so each method tries the syscall
  first and registers a reader/writer only on EAGAIN: no registration, no future in the common case. That
  shape is :meth:`SockOpsMixin._sock_call`; each method only names its step (a function that does the
  syscall, raising BlockingIOError while it cannot finish yet) and the direction to wait for.
- On a blocking socket the "try first" call would block the whole loop, so they are refused with a
  ValueError always (stock asyncio checks only in debug mode). A TLS socket is refused too: its send/recv do
  TLS in the kernel's place, and readiness of the fd says nothing about them.
- One fd has one reader and one writer slot. When the operation succeeds, the readiness callback removes the
  registration at once, before the woken task runs; when it fails or its task is cancelled, the coroutine
  removes it as the exception passes. No done callback on the future (a closure and a context copy per wait),
  and no removal is left for after the task's step: that step may close the socket, and a deferred
  epoll_ctl DEL on a closed fd makes the epoll backend treat its number as suspect (a dup() may keep the file
  registered) and rebuild its whole set when the number is reused (measured: 98 rebuilds, 20,098 epoll_ctl
  calls for 100 recv-then-close connections beside 200 idle fds, when the registration was kept past the
  step to save the DEL + ADD of a ping-pong). A slot replaced meanwhile by another operation (its handle was
  cancelled) is left alone.
- A non-blocking ``connect`` reports completion by writability; the outcome is in SO_ERROR.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from ..seams import FdRegistry, Loop
from .connect import resolve
from .sockcalls import recv_now
from .socketargs import check_not_ssl_socket

_TRY_AGAIN = (BlockingIOError, InterruptedError)


class SockOpsMixin(Loop):
    """sock_recv, sock_recv_into, sock_recvfrom, sock_recvfrom_into, sock_sendall, sock_sendto, sock_connect,
    sock_accept."""

    def _check_sock(self, sock: Any) -> None:
        if sock.__class__ is not socket.socket:  # a plain socket is no SSLSocket: one test, no call
            check_not_ssl_socket(sock)
        if sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    def _wait_fd(self, fut: asyncio.Future[Any], sock: Any, fd: int, writing: bool, step: Callable[..., object],
                 *args: Any) -> asyncio.Handle:
        """Retry ``step(*args)`` each time ``sock`` is ready until it returns (``fut``'s result) or fails
        (``fut``'s exception). The registration, the returned handle, is removed by ``_retry`` once ``fut``
        has its result (see the module docstring); the caller removes it with :func:`_abandon` if ``fut`` ends otherwise."""
        fdtable = self._fdtable
        fdtable.check_unowned(fd)
        if writing:
            return fdtable.add_writer(fd, _retry, fut, step, args, fdtable.remove_writer, fd)
        return fdtable.add_reader(fd, _retry, fut, step, args, fdtable.remove_reader, fd)

    async def _sock_call(self, sock: socket.socket, writing: bool, step: Callable[..., Any], *args: Any) -> Any:
        """``step(*args)`` now if the kernel is ready, else once ``sock`` is (writable if ``writing``, else
        readable) and ``step`` no longer raises BlockingIOError."""
        self._check_sock(sock)
        try:
            return step(*args)
        except _TRY_AGAIN:
            pass
        fut = self.create_future()
        fd = sock.fileno()
        handle = self._wait_fd(fut, sock, fd, writing, step, *args)
        try:
            return await fut
        except BaseException:
            _abandon(self._fdtable, handle, fd, writing)
            fut = None  # type: ignore[assignment]  # exc -> traceback -> this frame -> fut -> exc would be a cycle
            raise

    # -------------------------------------------------------------------------------------- receiving
    # sock_recv, sock_recv_into and sock_sendall are _sock_call written out: they are the ones used in loops, and
    # the extra coroutine, the argument packing and the getattr cost 10-15% of a ping-pong round trip.
    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        self._check_sock(sock)
        data = recv_now(sock, n)  # compiled: "nothing queued" is None, not a BlockingIOError
        if data is not None:
            return data
        fut = self.create_future()
        fd = sock.fileno()
        handle = self._wait_fd(fut, sock, fd, False, _recv, sock, n)
        try:
            return await fut
        except BaseException:
            _abandon(self._fdtable, handle, fd, False)
            fut = None  # type: ignore[assignment]  # see _sock_call
            raise

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        self._check_sock(sock)
        try:
            return sock.recv_into(buf)
        except _TRY_AGAIN:
            pass
        fut = self.create_future()
        fd = sock.fileno()
        handle = self._wait_fd(fut, sock, fd, False, _recv_into, sock, buf)
        try:
            return await fut
        except BaseException:
            _abandon(self._fdtable, handle, fd, False)
            fut = None  # type: ignore[assignment]  # see _sock_call
            raise

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        return await self._sock_call(sock, False, _call, sock, "recvfrom", bufsize)

    async def sock_recvfrom_into(self, sock: socket.socket, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        return await self._sock_call(sock, False, _call, sock, "recvfrom_into", buf, nbytes or len(buf))

    # ---------------------------------------------------------------------------------------- sending
    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        self._check_sock(sock)
        if data.__class__ is bytes:
            # Usually all of it goes at once: no memoryview, no future.
            try:
                sent = sock.send(data)
            except _TRY_AGAIN:
                sent = 0
            if sent == len(data):
                return
            view = memoryview(data)
            pos = [sent]
        else:
            view = memoryview(data).cast("B")
            pos = [0]
            try:
                _send_rest(sock, view, pos)
                return
            except _TRY_AGAIN:
                pass
        fut = self.create_future()
        fd = sock.fileno()
        handle = self._wait_fd(fut, sock, fd, True, _send_rest, sock, view, pos)
        try:
            await fut
        except BaseException:
            _abandon(self._fdtable, handle, fd, True)
            fut = None  # type: ignore[assignment]  # see _sock_call
            raise

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        return await self._sock_call(sock, True, _call, sock, "sendto", data, address)

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
        fd = sock.fileno()
        handle = self._wait_fd(fut, sock, fd, True, _connect_result, sock, address)
        try:
            await fut
        except BaseException:
            _abandon(self._fdtable, handle, fd, True)
            fut = None  # type: ignore[assignment]  # see _sock_call
            raise

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        conn, address = await self._sock_call(sock, False, _call, sock, "accept")
        conn.setblocking(False)
        return conn, address


def _retry(fut: asyncio.Future[Any], step: Callable[..., Any], args: tuple[Any, ...], remove: Callable[[int], bool],
           fd: int) -> None:
    """The readiness callback of every sock_* operation: one more try of ``step``. Done: the registration is
    removed here, before the woken task runs (it may close the socket: see the module docstring)."""
    if fut.done():
        return  # cancelled in a pass before this readiness was dispatched; the coroutine removes us
    try:
        result = step(*args)
    except _TRY_AGAIN:
        return
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        fut.set_exception(exc)  # the coroutine removes the registration when the exception reaches it
    else:
        fut.set_result(result)
        remove(fd)
    finally:
        fut = None  # type: ignore[assignment]  # exc -> traceback -> this frame -> fut -> exc would be a cycle


def _abandon(fdtable: FdRegistry, handle: asyncio.Handle, fd: int, writing: bool) -> None:
    """The wait ``handle`` served ended without a result (cancelled, or the step failed): remove its
    registration, unless another operation took the slot meanwhile (our handle was cancelled then)."""
    if not handle.cancelled():
        if writing:
            fdtable.remove_writer(fd)
        else:
            fdtable.remove_reader(fd)


def _call(sock: Any, method: str, *args: Any) -> Any:
    # Looked up on each try, not bound once: a wrapper or mock may swap the method in between.
    return getattr(sock, method)(*args)


def _recv(sock: Any, n: int) -> Any:
    # sock_recv's step: _call's work without the getattr and the argument packing (it runs on every wake).
    return sock.recv(n)


def _recv_into(sock: Any, buf: Any) -> Any:
    return sock.recv_into(buf)


def _send_rest(sock: socket.socket, view: memoryview, pos: list[int]) -> None:
    """Send what is left of ``view`` from ``pos[0]``; BlockingIOError until all of it has gone."""
    pos[0] += sock.send(view[pos[0]:])
    if pos[0] < len(view):
        raise BlockingIOError  # the rest waits for writability


def _connect_result(sock: socket.socket, address: Any) -> None:
    """The outcome of a non-blocking connect that has finished (the socket became writable)."""
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err != 0:
        raise OSError(err, f"Connect call failed {address}")
