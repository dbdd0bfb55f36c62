"""The socket stream transport (TCP and Unix stream sockets) on top of the core's fd registration.

Facts that shape it:
- A non-blocking ``send`` usually takes everything on an idle connection, so ``write`` sends straight away and
  buffers only what the kernel refused; the writer callback is registered only while something is buffered.
- ``recv(256 KiB)`` allocates a 256 KiB bytes object and shrinks it; in a fresh process glibc serves that with
  mmap/munmap, ~10 us per read even for a 100-byte message (measured: 11.8 us vs 1.4 us). For small reads we
  read into one reused 256 KiB bytearray (one per loop, shared by its transports) and hand the protocol a bytes
  copy of exactly what arrived (one allocation, the data itself). ``recv(64 KiB)`` is as cheap for tiny
  messages but slower from ~4 KiB up and needs four passes for what one 256 KiB read gets.
- That copy is the one cost of the reused buffer, and it grows with the data: 64 KiB is 64 KiB of memcpy per
  read (65,000 of the 79,000 instructions per 64 KiB echo request, callgrind), while ``recv()`` into a fresh
  bytes object costs the kernel's copy only. So a connection whose last read was large (>= ``streamengine.LARGE_READ``) reads
  with ``recv()`` into a fresh bytes object until a read comes back small again. That object must be smaller than
  the allocator's mmap threshold (glibc: 128 KiB): ``recv(256 KiB)`` in a fresh process is an mmap, 16 page faults
  per 64 KiB that arrive, an mremap to shrink it and an munmap when it is freed (the kernel time per 64 KiB echo
  request was 3-4x uvloop's, 18 minor faults per request); ``recv(120 KiB)`` reuses warm heap memory.
- ``sendmsg`` sends several buffers in one syscall without joining them, so ``writelines`` and the flush of a
  buffer of many chunks cost one copy (into the kernel), not two. At most IOV_MAX buffers per call.
- The reader callback is registered once (a bound method, no per-event allocation) and kept while reading;
  the core runs it in the same pass the backend reports the fd ready.
- Most connections are idle most of the time, and an idle connection's memory is what a server with many of
  them pays for: the write buffer (a deque, ~600 bytes empty) exists only while the kernel refuses data, and
  nothing is kept per connection that can be looked up when needed (bound socket methods, default limits).

- ``shutdown(SHUT_WR)`` sends the peer an EOF while the socket can still read: ``write_eof`` does it once the
  buffer is flushed. A peer's EOF is final: after ``eof_received`` returns true the socket stays open for
  writing but is no longer watched for reading (an fd at EOF is always readable).

Lifecycle, the fatal-error rule (every OSError ends a socket connection quietly), flow control and fd
ownership are :class:`multiloop.transport_base.FdTransport`'s; this module is the socket I/O. The transport
also offers stock asyncio's seams other code reads on socket transports: ``_start_tls_compatible`` (start_tls),
``_make_empty_waiter``/``_reset_empty_waiter`` (sendfile) and ``_sock``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import socket
from typing import Any

from ..seams import ConnectionTracker, Loop
from ..transport_base import FdTransport
from .socketview import socket_extra
from .streamengine import StreamEngine

logger = logging.getLogger("asyncio")

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


class SocketTransport(FdTransport, asyncio.Transport):
    """A stream transport over a connected, non-blocking socket. Created by ``loop._make_socket_transport``."""

    # loop.sendfile may use os.sendfile on our socket (the seam net-B's sendfile code checks).
    _multiloop_sendfile_native = True
    # What stock asyncio's start_tls checks before wrapping a transport.
    _start_tls_compatible = True
    # ``write`` is a slot holding the engine's bound write (see multiloop.net.streamengine): user code calling
    # transport.write(data) lands in the engine with no Python frame of ours in between.
    __slots__ = ("_eof", "_engine", "write")
    # Rarely set (sendfile): a class default until then, when the instance's __dict__ is made for it.
    _empty_waiter: asyncio.Future[None] | None = None
    #: What the write buffer is while nothing is buffered (falsy, empty, shared): see _append.
    _NO_BUFFER: Any = ()

    def __init__(self, loop: Loop, sock: socket.socket, protocol: asyncio.BaseProtocol,
                 waiter: asyncio.Future[Any] | None = None, extra: dict[str, Any] | None = None,
                 server: ConnectionTracker | None = None) -> None:
        super().__init__(loop, sock, sock.fileno(), protocol, waiter, socket_extra(sock, extra), server)
        engine = self._engine = StreamEngine(self, sock, loop._read_buffer)
        self.write = engine.write  # type: ignore[method-assign]
        self._buffer: collections.deque[Any] = self._NO_BUFFER  # a deque while something is buffered
        self._eof = False  # write_eof() called
        self.set_protocol(protocol)
        set_nodelay(sock)

    @property
    def _sock(self) -> socket.socket | None:
        """The socket (stock asyncio's attribute name), None once the connection is lost."""
        return self._file

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol
        self._engine.set_protocol(protocol, isinstance(protocol, _BufferedProtocol))

    def _update_direct(self) -> None:
        """Tell the engine whether a write may go straight to the kernel (see StreamEngine)."""
        self._engine.direct = not (self._buffer or self._eof or self._conn_lost or self._file is None
                                   or self._empty_waiter is not None)

    # ------------------------------------------------------------------------------------------ reading
    def _start_reading(self) -> None:
        self._loop._fdtable.add_reader(self._fd, self._engine, context=self._context)
        self._reader_on = True

    def _read_ready(self) -> None:
        self._engine()

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
            self._stop_reading()  # half-closed: the protocol may still write, but there is nothing to read
        else:
            self.close()

    # ------------------------------------------------------------------------------------------ writing
    def _write(self, data: bytes | bytearray | memoryview) -> None:
        """write() when the engine may not send at once: every check, then send or buffer."""
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
                n = self._file.send(data)
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
            self._start_writing()
        self._append(data)
        self._maybe_pause_protocol()

    def _write_rest(self, data: bytes, n: int) -> None:
        """The engine sent the first ``n`` bytes of ``data`` (``n < len(data)``): buffer the rest."""
        self._start_writing()
        self._append(memoryview(data)[n:] if n else data)
        self._maybe_pause_protocol()

    def _append(self, data: Any) -> None:
        # The caller may reuse a mutable buffer once write() returns: keep an immutable copy of what is left
        # (bytes, or a memoryview slice of bytes we made ourselves, need no copy).
        if type(data) is not bytes and not (type(data) is memoryview and type(data.obj) is bytes):
            data = bytes(data)
        buffer = self._buffer
        if buffer is self._NO_BUFFER:
            buffer = self._buffer = collections.deque()
            self._engine.direct = False
        buffer.append(data)
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
        sendmsg = self._file.sendmsg if _HAS_SENDMSG else None
        if self._buffer or sendmsg is None:
            if not self._buffer:  # no sendmsg: the first chunk may still go out at once
                self.write(chunks.pop(0))
            for chunk in chunks:
                self._append(chunk)
            self._maybe_pause_protocol()
            return
        # One syscall for all of them, straight from the caller's buffers; copy only what is left over.
        try:
            n = sendmsg(chunks[:IOV_MAX])
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
            self._start_writing()
            self._maybe_pause_protocol()

    def _flush(self) -> bool:
        """Send as much of the buffer as the kernel takes. False if the connection failed."""
        buffer = self._buffer
        sock = self._file
        try:
            if len(buffer) == 1 or not _HAS_SENDMSG:
                n = sock.send(buffer[0])
            else:
                n = sock.sendmsg(_islice(buffer, IOV_MAX))
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
            self._buffer = self._NO_BUFFER  # an idle connection keeps no deque
            self._update_direct()
            if self._empty_waiter is not None and not self._empty_waiter.done():
                self._empty_waiter.set_result(None)
            self._write_done()
            if self._eof and not self._closing:
                self._shutdown_write()

    def _shutdown_write(self) -> None:
        try:
            self._file.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fatal_error(exc, "Fatal error on shutdown(SHUT_WR)")

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._eof = True
        self._engine.direct = False
        if not self._buffer:
            self._shutdown_write()

    # ------------------------------------------------------------------------------- sendfile seam
    def _make_empty_waiter(self) -> asyncio.Future[None]:
        """A future resolved once the write buffer is empty (loop.sendfile waits on it before sending)."""
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        waiter = self._empty_waiter = self._loop.create_future()
        self._engine.direct = False
        if not self._buffer:
            waiter.set_result(None)
        return waiter

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None
        self._update_direct()

    # ---------------------------------------------------------------------------------------- closing
    def _drop_buffer(self) -> None:
        super()._drop_buffer()
        if self._buffer is not self._NO_BUFFER:
            self._buffer = self._NO_BUFFER
        self._update_direct()

    def _lose(self, exc: BaseException | None) -> None:
        self._engine.lost = True
        self._engine.direct = False
        super()._lose(exc)

    def _write_done(self) -> None:
        super()._write_done()
        if self._conn_lost:
            self._engine.lost = True
        self._update_direct()

    def _release(self) -> None:
        super()._release()
        self._engine.detach()
        waiter = self._empty_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("Connection is closed by peer"))
