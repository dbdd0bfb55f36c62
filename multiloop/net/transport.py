"""The socket stream transport (TCP and Unix stream sockets) on top of the core's fd registration.

Facts that shape it:
- A non-blocking ``send`` usually takes everything on an idle connection, so ``write`` sends straight away and
  buffers only what the kernel refused; the writer callback is registered only while something is buffered.
- ``recv(256 KiB)`` allocates a 256 KiB bytes object and shrinks it; in a fresh process glibc serves that with
  mmap/munmap, ~10 us per read even for a 100-byte message (measured: 11.8 us vs 1.4 us). We read into one
  reused 256 KiB bytearray (one per loop, shared by its transports) and hand the protocol a bytes copy of
  exactly what arrived (one allocation, the data itself). ``recv(64 KiB)`` is as cheap for tiny messages but slower from ~4 KiB up and needs four
  passes for what one 256 KiB read gets.
- ``sendmsg`` sends several buffers in one syscall without joining them, so ``writelines`` and the flush of a
  buffer of many chunks cost one copy (into the kernel), not two. At most IOV_MAX buffers per call.
- The reader callback is registered once (a bound method, no per-event allocation) and kept while reading;
  the core runs it in the same pass the backend reports the fd ready.

asyncio compatibility (CPython 3.13 behaviour on every version): ``connection_lost`` exactly once, after
``connection_made``; OSErrors close the connection quietly (debug log), other exceptions from protocol methods
also go to the exception handler; writes after the connection is lost are dropped with a warning after
``LOG_THRESHOLD_FOR_CONNLOST_WRITES`` of them; ``close`` flushes the buffer first, ``abort`` drops it.
Contexts: a callback runs in a copy of the context its registration was made in (so ``resume_reading`` called
from a task makes later ``data_received`` calls see that task's variables), except, from 3.15 on (CPython
gh-140947), a connection a server accepted: every callback of its protocol runs in the one context the
connection was accepted in.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import itertools
import logging
import os
import socket
import sys
import warnings
from typing import Any

from multiloop.flowcontrol import water_marks

from .socketview import wrap_socket

logger = logging.getLogger("asyncio")

# Stock asyncio's constant (asyncio.constants is private): warn after this many writes to a lost connection.
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5
_SERVER_CONNECTION_CONTEXT = sys.version_info >= (3, 15)
READ_BUFFER_SIZE = 256 * 1024

_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")
try:
    IOV_MAX = os.sysconf("SC_IOV_MAX") if _HAS_SENDMSG else 1
except (OSError, ValueError):
    IOV_MAX = 16  # POSIX minimum

_BufferedProtocol = asyncio.BufferedProtocol
_TRY_AGAIN = (BlockingIOError, InterruptedError)
_islice = itertools.islice


def set_nodelay(sock: socket.socket) -> None:
    """Disable Nagle on TCP sockets, as stock asyncio does: small writes go out without waiting for an ACK."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM \
            and sock.proto in (0, socket.IPPROTO_TCP):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # e.g. the peer already reset the connection; the first read/write will say so


def _as_bytes_like(data: Any) -> Any:
    """``data`` with len() in bytes (a memoryview of wider items counts items), or TypeError like write()."""
    if type(data) is bytes:
        return data
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
    if type(data) is memoryview and (data.itemsize != 1 or data.ndim != 1):
        return data.tobytes()
    return data


def shared_read_view(loop: Any) -> memoryview:
    """The loop's one read buffer, shared by all its stream transports.

    Sharing is safe because a transport copies what it read out of the buffer before calling the protocol,
    and a loop runs callbacks one at a time in one thread (never share it across loops: ``recv_into``
    releases the GIL). It saves a 256 KiB allocation per connection, which glibc would mmap."""
    view = loop.__dict__.get("_multiloop_read_view")
    if view is None:
        view = loop._multiloop_read_view = memoryview(bytearray(READ_BUFFER_SIZE))
    return view  # type: ignore[no-any-return]


class SocketTransport(asyncio.Transport):
    """A stream transport over a connected, non-blocking socket. Created by ``loop._make_socket_transport``."""

    # loop.sendfile may use os.sendfile on our socket (the seam net-B's sendfile code checks).
    _multiloop_sendfile_native = True
    # What stock asyncio's start_tls checks before wrapping a transport.
    _start_tls_compatible = True
    _sock: socket.socket | None = None  # __del__ reads it even if __init__ failed early

    def __init__(self, loop: Any, sock: socket.socket, protocol: asyncio.BaseProtocol,
                 waiter: asyncio.Future[Any] | None = None, extra: dict[str, Any] | None = None,
                 server: Any = None) -> None:
        super().__init__(extra)
        self._extra["socket"] = wrap_socket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._loop = loop
        self._sock = sock
        self._sock_fd = sock.fileno()
        self._recv = sock.recv_into
        self._rview = shared_read_view(loop)
        self._buffer: collections.deque[Any] = collections.deque()
        self._bufsize = 0
        self._high_water = 64 * 1024
        self._low_water = 16 * 1024
        self._protocol_paused = False
        self._conn_lost = 0  # > 0 once connection_lost is scheduled; counts writes after that
        self._closing = False
        self._paused = False  # pause_reading()
        self._reader_on = False
        self._writer_on = False
        self._eof = False  # write_eof() called
        self._read_eof = False  # the peer's EOF arrived: nothing more to read, ever
        self._empty_waiter: asyncio.Future[None] | None = None
        self._server = server
        # 3.15: a server connection's callbacks all run in one context (see the module docstring).
        self._context = contextvars.copy_context() if server is not None and _SERVER_CONNECTION_CONTEXT else None
        self._protocol: Any = None
        self.set_protocol(protocol)
        set_nodelay(sock)
        if server is not None:
            server._attach(self)
        loop._transports[self._sock_fd] = self
        loop.call_soon(self._start, waiter, context=self._context)

    def _start(self, waiter: asyncio.Future[Any] | None) -> None:
        # One callback instead of stock's three (connection_made, start reading, wake the waiter); an
        # exception from connection_made is reported like stock's failing callback and the rest still runs.
        try:
            self._protocol.connection_made(self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": f"Exception in callback {self._protocol!r}.connection_made()",
                "exception": exc, "transport": self, "protocol": self._protocol})
        if not self._closing and not self._paused and self._sock is not None:
            self._loop._add_reader(self._sock_fd, self._read_ready, context=self._context)
            self._reader_on = True
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        if self._sock is not None:
            info.append("read=polling" if self._reader_on else "read=idle")
            info.append(f"write=<{'polling' if self._writer_on else 'idle'}, bufsize={self._bufsize}>")
        return f"<{' '.join(info)}>"

    # --------------------------------------------------------------------------------------- protocol
    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._buffered = isinstance(protocol, _BufferedProtocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    # ------------------------------------------------------------------------------------------ reading
    def is_reading(self) -> bool:
        return not self._closing and not self._paused

    def pause_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._paused = True
        if self._reader_on:
            self._reader_on = False
            self._loop._remove_reader(self._sock_fd)
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        if self._read_eof:
            return  # watching a socket at EOF would report it again, and eof_received() would run twice
        self._loop._add_reader(self._sock_fd, self._read_ready, context=self._context)
        self._reader_on = True
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    def _read_ready(self) -> None:
        if self._conn_lost:
            return
        if self._buffered:
            self._read_into_protocol()
            return
        view = self._rview
        try:
            n = self._recv(view)
        except _TRY_AGAIN:
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not n:
            self._on_eof()
            return
        try:
            self._protocol.data_received(view[:n].tobytes())
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _read_into_protocol(self) -> None:
        protocol = self._protocol
        try:
            buf = protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        try:
            n = self._recv(buf)
        except _TRY_AGAIN:
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not n:
            self._on_eof()
            return
        try:
            protocol.buffer_updated(n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _on_eof(self) -> None:
        self._read_eof = True
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if keep_open:
            # Half-closed: the protocol may still write, but there is nothing more to read.
            if self._reader_on:
                self._reader_on = False
                self._loop._remove_reader(self._sock_fd)
        else:
            self.close()

    # ------------------------------------------------------------------------------------------ writing
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not data:
            return
        if type(data) is memoryview and (data.itemsize != 1 or data.ndim != 1):
            data = data.tobytes()  # byte offsets below must match what send() counts
        if self._conn_lost:
            self._write_after_lost()
            return
        if not self._buffer:
            try:
                n = self._sock.send(data)  # type: ignore[union-attr]
            except _TRY_AGAIN:
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on socket transport")
                return
            if n == len(data):
                return
            if n:
                data = memoryview(data)[n:] if type(data) is bytes else bytes(memoryview(data)[n:])
            self._loop._add_writer(self._sock_fd, self._write_ready, context=self._context)
            self._writer_on = True
        self._append(data)
        self._maybe_pause_protocol()

    def _append(self, data: Any) -> None:
        # The caller may reuse a mutable buffer once write() returns: keep an immutable copy of what is left
        # (bytes, or a memoryview slice of bytes we made ourselves, need no copy).
        if type(data) is not bytes and not (type(data) is memoryview and type(data.obj) is bytes):
            data = bytes(data)
        self._buffer.append(data)
        self._bufsize += len(data)

    def writelines(self, list_of_data: Any) -> None:
        if self._eof:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        chunks = [_as_bytes_like(d) for d in list_of_data if len(d)]
        if not chunks:
            return
        if self._conn_lost:
            self._write_after_lost()
            return
        if self._buffer or not _HAS_SENDMSG:
            if not self._buffer:  # no sendmsg: the first chunk may still go out at once
                self.write(chunks.pop(0))
            for chunk in chunks:
                self._append(chunk)
            self._maybe_pause_protocol()
            return
        # One syscall for all of them, straight from the caller's buffers; copy only what is left over.
        try:
            n = self._sock.sendmsg(chunks[:IOV_MAX])  # type: ignore[union-attr]
        except _TRY_AGAIN:
            n = 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return
        for chunk in chunks:
            size = len(chunk)
            if n >= size:
                n -= size
                continue
            if n:
                chunk, n = memoryview(chunk)[n:], 0
            self._append(chunk)
        if self._buffer:
            self._loop._add_writer(self._sock_fd, self._write_ready, context=self._context)
            self._writer_on = True
            self._maybe_pause_protocol()

    def _write_after_lost(self) -> None:
        if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            logger.warning("socket.send() raised exception.")
        self._conn_lost += 1

    def _flush(self) -> bool:
        """Send as much of the buffer as the kernel takes. False if the connection failed."""
        buffer = self._buffer
        try:
            if len(buffer) == 1 or not _HAS_SENDMSG:
                n = self._sock.send(buffer[0])  # type: ignore[union-attr]
            else:
                n = self._sock.sendmsg(_islice(buffer, IOV_MAX))  # type: ignore[union-attr]
        except _TRY_AGAIN:
            return True
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._drop_buffer()
            self._fatal_error(exc, "Fatal write error on socket transport")
            if self._empty_waiter is not None and not self._empty_waiter.done():
                self._empty_waiter.set_exception(exc)
            return False
        self._bufsize -= n
        while n:
            chunk = buffer[0]
            size = len(chunk)
            if size <= n:
                buffer.popleft()
                n -= size
            else:
                buffer[0] = memoryview(chunk)[n:]
                break
        return True

    def _write_ready(self) -> None:
        if self._conn_lost or not self._buffer:
            return
        if not self._flush():
            return
        self._maybe_resume_protocol()  # may write more
        if not self._buffer:
            if self._writer_on:
                self._writer_on = False
                self._loop._remove_writer(self._sock_fd)
            if self._empty_waiter is not None and not self._empty_waiter.done():
                self._empty_waiter.set_result(None)
            if self._closing:
                self._call_connection_lost(None)
            elif self._eof:
                self._shutdown_write()

    def _drop_buffer(self) -> None:
        self._buffer.clear()
        self._bufsize = 0
        if self._writer_on:
            self._writer_on = False
            self._loop._remove_writer(self._sock_fd)

    def _shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
        except OSError as exc:
            self._fatal_error(exc, "Fatal error on shutdown(SHUT_WR)")

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._eof = True
        if not self._buffer:
            self._shutdown_write()

    # ------------------------------------------------------------------------------------ flow control
    def get_write_buffer_size(self) -> int:
        return self._bufsize

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high_water, self._low_water = water_marks(high, low)
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._bufsize <= self._high_water or self._protocol_paused:
            return
        self._protocol_paused = True
        try:
            self._protocol.pause_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": "protocol.pause_writing() failed",
                "exception": exc, "transport": self, "protocol": self._protocol})

    def _maybe_resume_protocol(self) -> None:
        if not self._protocol_paused or self._bufsize > self._low_water:
            return
        self._protocol_paused = False
        try:
            self._protocol.resume_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": "protocol.resume_writing() failed",
                "exception": exc, "transport": self, "protocol": self._protocol})

    # ------------------------------------------------------------------------------- sendfile seam
    def _make_empty_waiter(self) -> asyncio.Future[None]:
        """A future resolved once the write buffer is empty (loop.sendfile waits on it before sending)."""
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        waiter = self._empty_waiter = self._loop.create_future()
        if not self._buffer:
            waiter.set_result(None)
        return waiter

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None

    # ---------------------------------------------------------------------------------------- closing
    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._reader_on:
            self._reader_on = False
            self._loop._remove_reader(self._sock_fd)
        if not self._buffer:
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None, context=self._context)

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            # A peer reset / broken pipe is the connection's normal end, not a bug: no exception handler.
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                "message": message, "exception": exc, "transport": self, "protocol": self._protocol})
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            self._drop_buffer()
        if not self._closing:
            self._closing = True
            if self._reader_on:
                self._reader_on = False
                self._loop._remove_reader(self._sock_fd)
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc, context=self._context)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._sock is None:
            return
        try:
            self._protocol.connection_lost(exc)
        finally:
            loop = self._loop
            if self._writer_on:
                self._writer_on = False
                loop._remove_writer(self._sock_fd)
            if loop._transports.get(self._sock_fd) is self:
                del loop._transports[self._sock_fd]
            self._sock.close()
            self._sock = None
            self._protocol = None
            self._rview = None  # type: ignore[assignment]
            server, self._server = self._server, None
            if server is not None:
                server._detach(self)
            waiter = self._empty_waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionError("Connection is closed by peer"))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()
            if self._server is not None:
                self._server._detach(self)
