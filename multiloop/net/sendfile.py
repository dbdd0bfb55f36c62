"""``loop.sendfile`` (to a transport) and ``loop.sock_sendfile`` (to a raw non-blocking socket).

Facts:
- ``os.sendfile(out_fd, in_fd, offset, count)`` copies from a file to a socket inside the kernel and does not
  move the file position (we pass ``offset`` explicitly). On a non-blocking socket it sends what fits in
  the socket buffer and raises EAGAIN when nothing fits. It needs an mmap-able input (a regular file);
  other inputs fail with EINVAL/ENOSYS/EOPNOTSUPP on the *first* call, which we report as
  ``SendfileNotAvailableError`` so that the caller can fall back. Linux transfers at most ~2 GiB per call.
- Zero-copy only works on a plain socket transport: a TLS transport must encrypt every byte, so it always
  takes the read-and-write fallback.
- Stock asyncio's observable contract, which we keep: the result is the number of bytes sent; the file
  position is left at ``offset + sent`` (also after an error, so ``file.tell()`` says how far it got).
  Per Python: before 3.14 the position is only touched when something was sent, and the fallbacks only seek
  to a non-zero ``offset`` (offset 0 reads from the current position); from 3.14 on the fallbacks always
  seek to ``offset`` first and the position is always left at ``offset + sent``, even when nothing was sent;
  a closing transport is a RuntimeError, a transport that cannot carry a file (datagram) a RuntimeError
  saying "not supported"; ``fallback=False`` raises ``SendfileNotAvailableError`` instead of falling back;
  while a transport sendfile is in progress, ``transport.write`` raises (the stream transport's empty-waiter
  contract) and the protocol receives no data (reading is paused).
- If the connection breaks part-way through a zero-copy send, the transport is closed at once with the
  error (``connection_lost(exc)``), as a failed ``write`` would; stock asyncio leaves that to the next read.
- The method names ``_sendfile_native`` / ``_sendfile_fallback`` / ``_sock_sendfile_native`` /
  ``_sock_sendfile_fallback`` are kept because CPython's test suite replaces ``_sendfile_native`` to force
  the fallback.

Design: for the duration of a transport sendfile the transport's protocol is swapped for a
:class:`_SendfileSession` that remembers the application protocol, tracks pause_writing/resume_writing
(fallback flow control), turns connection loss into an error for whatever the sendfile awaits (so a
closed transport never leaves a writer registered on a closed fd), forwards ``connection_lost`` to the
application, and on exit restores the protocol, reading state, and write-pause state exactly.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import socket
import ssl
import stat
import sys
from typing import Any

from ..seams import Loop
from . import _sslproto_adapter as tls_adapter

#: Chunk read by the fallbacks. Not observable; large enough to keep per-chunk overhead small.
TRANSPORT_FALLBACK_CHUNK = 64 * 1024
SOCK_FALLBACK_CHUNK = 256 * 1024
#: Per os.sendfile() call; Linux would cap at 0x7ffff000 anyway, and 32-bit size_t needs it.
MAX_SENDFILE_CALL = 1 << 30
#: 3.14's file-position rule (see the module docstring).
_ALWAYS_POSITION = sys.version_info >= (3, 14)

# First-call failures that mean "this file/socket combination cannot do sendfile", not a connection error.
_NOT_AVAILABLE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EINVAL",
        "ENOSYS",
        "EOPNOTSUPP",
        "ENOTSUP",
        "ENOTSOCK",
        "ESPIPE",
        "EOVERFLOW",
        "EAFNOSUPPORT",
    )
    if hasattr(errno, name)
)


def check_sendfile_args(file: Any, offset: Any, count: Any) -> None:
    """Stock asyncio's argument checks (same exception types and messages)."""
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


def _transport_mode(transport: Any) -> str:
    """'native', 'fallback' or 'unsupported' for what ``transport`` can do with a file."""
    # "is True": a Mock (CPython's tests use them) has every attribute, all truthy.
    if getattr(transport, "_multiloop_sendfile_native", False) is True:
        return "native"
    if tls_adapter.is_app_transport(transport):
        return "fallback"
    # Foreign transports may carry stock asyncio's marker (an enum; compared by name, the module is private).
    name = getattr(getattr(transport, "_sendfile_compatible", None), "name", None)
    if name == "TRY_NATIVE":
        return "native"
    if name == "FALLBACK":
        return "fallback"
    return "unsupported"


def _writing_paused(transport: Any) -> bool:
    """Whether ``transport`` has told its protocol to pause writing (and not yet to resume)."""
    paused = getattr(transport, "_protocol_paused", None)
    if isinstance(paused, bool):
        return paused
    try:
        _, high = transport.get_write_buffer_limits()
        return bool(transport.get_write_buffer_size() > high)
    except (AttributeError, NotImplementedError, TypeError):
        return False


class _SendfileSession(asyncio.Protocol):
    """Stands in for the application's protocol while a sendfile owns the transport."""

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: Any) -> None:
        self._loop = loop
        self._transport = transport
        self._app = transport.get_protocol()
        self._resume_reading = transport.is_reading()
        self._app_paused = _writing_paused(transport)
        self._paused = self._app_paused
        self._waiters: set[asyncio.Future[Any]] = set()
        self._on_lost: Any = None
        self._lost: BaseException | None = None
        self._is_lost = False
        transport.pause_reading()
        transport.set_protocol(self)

    # -- what the sendfile awaits
    def track(self, fut: asyncio.Future[Any]) -> asyncio.Future[Any]:
        """Fail ``fut`` if the connection is lost before it is done."""
        if self._is_lost:
            fut.set_exception(self._lost_error())
        else:
            self._waiters.add(fut)
            fut.add_done_callback(self._waiters.discard)
        return fut

    def on_lost(self, callback: Any) -> None:
        """Run ``callback()`` (or nothing, if None) synchronously in connection_lost, i.e. before the
        transport closes the socket. One slot: the sendfile waits for one thing at a time."""
        self._on_lost = callback

    def _lost_error(self) -> BaseException:
        return self._lost if self._lost is not None else ConnectionError("Connection is closed by peer")

    async def drain(self) -> None:
        """Wait while the transport has asked us to pause writing."""
        while True:
            if self._is_lost or self._transport.is_closing():
                raise ConnectionError("Connection closed by peer") from self._lost
            if not self._paused:
                return
            await self.track(self._loop.create_future())

    # -- protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raise RuntimeError("Invalid state: connection should have been established already.")

    def connection_lost(self, exc: Exception | None) -> None:
        self._is_lost = True
        self._lost = exc
        if self._on_lost is not None:
            self._on_lost()
        for fut in list(self._waiters):
            if not fut.done():
                fut.set_exception(self._lost_error())
        self._app.connection_lost(exc)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        for fut in list(self._waiters):
            if not fut.done():
                fut.set_result(None)

    def data_received(self, data: bytes) -> None:
        # Reading is paused, but a layer (TLS) may still deliver what it had decrypted: pass it on.
        app = self._app
        if isinstance(app, asyncio.BufferedProtocol):
            view = memoryview(data)
            while view:
                buf = memoryview(app.get_buffer(len(view))).cast("B")
                n = min(len(buf), len(view))
                buf[:n] = view[:n]
                app.buffer_updated(n)
                view = view[n:]
        else:
            app.data_received(data)

    def eof_received(self) -> bool | None:
        return self._app.eof_received()

    def restore(self) -> None:
        transport = self._transport
        try:
            transport.set_protocol(self._app)
        except AttributeError:
            # A TLS app transport closed twice has dropped its TLS layer; nothing to restore then.
            if not (self._is_lost or transport.is_closing()):
                raise
        for fut in list(self._waiters):
            fut.cancel()
        if self._is_lost:
            return
        if self._resume_reading:
            transport.resume_reading()
        # Tell the application what changed while it was not listening.
        if self._paused and not self._app_paused:
            self._app.pause_writing()
        elif self._app_paused and not self._paused:
            self._app.resume_writing()


class SendfileMixin(Loop):
    """``sendfile`` and ``sock_sendfile``."""

    # ------------------------------------------------------------------------------------ transports
    async def sendfile(
        self,
        transport: asyncio.WriteTransport,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        """Send ``file`` (from ``offset``, ``count`` bytes or to EOF) over ``transport``; return bytes sent."""
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        mode = _transport_mode(transport)
        if mode == "unsupported":
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        check_sendfile_args(file, offset, count)
        if mode == "native":
            try:
                return await self._sendfile_native(transport, file, offset, count)
            except asyncio.SendfileNotAvailableError:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(
                f"fallback is disabled and native sendfile is not supported for transport {transport!r}"
            )
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(self, transp: Any, file: Any, offset: int, count: int | None) -> int:
        if getattr(transp, "_multiloop_sendfile_native", False) is not True:
            raise asyncio.SendfileNotAvailableError("sendfile syscall is not supported")
        fileno = _sendfile_input_fd(file)
        # Everything written before must leave first, and write() is refused until we reset the waiter.
        # (RuntimeError here if another sendfile owns the transport: nothing touched yet.)
        empty = transp._make_empty_waiter()
        session = _SendfileSession(self, transp)
        try:
            await empty
            return await self._sendfile_to_socket(transp._sock, fileno, offset, count, session)
        except OSError as exc:
            # The stream broke part-way through the file: the transport is unusable, exactly as after a
            # failed write, so it closes now with the error (connection_lost(exc)) instead of whenever
            # its next read notices.
            if not transp.is_closing():
                force_close = getattr(transp, "_force_close", None)
                if force_close is not None:
                    force_close(exc)
                else:
                    transp.abort()
            raise
        finally:
            session.restore()
            transp._reset_empty_waiter()

    async def _sendfile_fallback(self, transp: Any, file: Any, offset: int, count: int | None) -> int:
        if offset or (_ALWAYS_POSITION and hasattr(file, "seek")):
            file.seek(offset)
        session = _SendfileSession(self, transp)
        total = 0
        try:
            while count is None or total < count:
                size = (
                    TRANSPORT_FALLBACK_CHUNK
                    if count is None
                    else min(count - total, TRANSPORT_FALLBACK_CHUNK)
                )
                # A fresh bytes object per chunk: the transport (and TLS) may keep a reference to what it
                # buffers, so a reused buffer would be overwritten under it.
                data = await self.run_in_executor(None, file.read, size)
                if not data:
                    break
                await session.drain()
                transp.write(data)
                total += len(data)
            return total
        finally:
            if total and hasattr(file, "seek"):
                file.seek(offset + total)
            session.restore()

    # ---------------------------------------------------------------------------------- raw sockets
    async def sock_sendfile(
        self,
        sock: socket.socket,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool | None = True,
    ) -> int:
        """Send ``file`` over the connected non-blocking stream socket ``sock``; return bytes sent."""
        if isinstance(sock, ssl.SSLSocket):
            raise TypeError("Socket cannot be of type SSLSocket")
        if sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        check_sendfile_args(file, offset, count)
        if sock.type != socket.SOCK_STREAM:
            raise ValueError("only SOCK_STREAM type sockets are supported")
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(
        self, sock: socket.socket, file: Any, offset: int, count: int | None
    ) -> int:
        fileno = _sendfile_input_fd(file)
        return await self._sendfile_to_socket(sock, fileno, offset, count, None)

    async def _sendfile_to_socket(
        self, sock: Any, fileno: int, offset: int, count: int | None, session: _SendfileSession | None
    ) -> int:
        fd = sock.fileno()
        total = 0
        try:
            while count is None or total < count:
                size = MAX_SENDFILE_CALL if count is None else min(count - total, MAX_SENDFILE_CALL)
                try:
                    sent = os.sendfile(fd, fileno, offset + total, size)
                except (BlockingIOError, InterruptedError):
                    await self._wait_writable(fd, session)
                    continue
                except OSError as exc:
                    if total == 0 and exc.errno in _NOT_AVAILABLE_ERRNOS:
                        raise asyncio.SendfileNotAvailableError(f"os.sendfile call failed: {exc}") from exc
                    if exc.errno == errno.ENOTCONN and total:
                        # The peer went away mid-transfer; name it as the other platforms do.
                        raise ConnectionError(errno.ENOTCONN, "socket is not connected") from exc
                    raise
                if sent == 0:
                    break  # end of file
                total += sent
                if count is None or total < count:
                    # Give the rest of the loop a turn between chunks, as a stream write would.
                    await self._wait_writable(fd, session)
            return total
        finally:
            if total or _ALWAYS_POSITION:
                os.lseek(fileno, offset + total, os.SEEK_SET)

    async def _wait_writable(self, fd: int, session: _SendfileSession | None) -> None:
        fut = self.create_future()
        if session is not None:
            session.track(fut)
            if fut.done():
                fut.result()  # the connection was already lost: raise its error
        handle = self._fdtable.add_writer(fd, _set_result_unless_done, fut)

        def unregister() -> None:
            # Only while our handle is the registered one: once cancelled, it was removed or replaced,
            # and the fd may even belong to another socket by now.
            if not handle.cancelled():
                self._fdtable.remove_writer(fd)

        if session is not None:
            # The transport closes the socket right after connection_lost; unregister before that.
            session.on_lost(unregister)
        try:
            await fut
        finally:
            unregister()
            if session is not None:
                session.on_lost(None)

    async def _sock_sendfile_fallback(
        self, sock: socket.socket, file: Any, offset: int, count: int | None
    ) -> int:
        if offset or (_ALWAYS_POSITION and hasattr(file, "seek")):
            file.seek(offset)
        buf = bytearray(SOCK_FALLBACK_CHUNK if count is None else min(count, SOCK_FALLBACK_CHUNK))
        fd = sock.fileno()
        total = 0
        try:
            while count is None or total < count:
                view = memoryview(buf)
                if count is not None:
                    view = view[: count - total]
                # Safe to reuse: every byte is in the kernel before the next read.
                n = await self.run_in_executor(None, file.readinto, view)
                if not n:
                    break
                pending = view[:n]
                while pending:
                    try:
                        sent = sock.send(pending)
                    except (BlockingIOError, InterruptedError):
                        await self._wait_writable(fd, None)
                        continue
                    pending = pending[sent:]
                total += n
            return total
        finally:
            if total and hasattr(file, "seek"):
                file.seek(offset + total)


def _sendfile_input_fd(file: Any) -> int:
    """The file's fd, or SendfileNotAvailableError if os.sendfile cannot read from it."""
    if not hasattr(os, "sendfile"):
        raise asyncio.SendfileNotAvailableError("os.sendfile() is not available")
    try:
        fileno = file.fileno()
    except (AttributeError, io.UnsupportedOperation) as exc:
        raise asyncio.SendfileNotAvailableError("not a regular file") from exc
    try:
        st = os.fstat(fileno)
    except OSError as exc:
        raise asyncio.SendfileNotAvailableError("not a regular file") from exc
    if not stat.S_ISREG(st.st_mode):
        raise asyncio.SendfileNotAvailableError("not a regular file")
    return fileno


def _set_result_unless_done(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)
