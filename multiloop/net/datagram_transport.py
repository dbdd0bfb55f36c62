"""The datagram transport (UDP over IPv4/IPv6, Unix datagram sockets).

Facts:
- A datagram is sent whole or not at all: ``sendto`` on a non-blocking socket either queues the entire
  datagram in the kernel or fails with EAGAIN (send buffer full), so what we buffer are whole datagrams,
  in order, each with its destination.
- Errors from the network come back asynchronously on the socket: an ICMP "port unreachable" after a send on
  a *connected* UDP socket makes the next ``recv``/``send`` fail with ECONNREFUSED. Such OSErrors are not
  fatal for a datagram endpoint; asyncio reports them to ``protocol.error_received`` and keeps going.
- ``recvfrom(n)`` allocates an ``n``-byte object and shrinks it; with asyncio's 256 KiB ``max_size`` that is
  an mmap/munmap pair per datagram in glibc. ``recvfrom_into`` a buffer reused by the transport, then one
  ``bytes`` of the datagram's real size, costs one small allocation.
- Stock asyncio's observable details kept, with the version that has them: empty datagrams are dropped on
  3.11/3.12 and sent on 3.13; buffered size counts 8 header bytes per datagram on 3.13; sending to another
  address on an endpoint created with ``remote_addr`` is a ValueError; after the transport is closed,
  ``sendto`` drops the datagram (logging a warning after a few). The transport is an
  ``asyncio.DatagramTransport`` and, like stock's, also an ``asyncio.Transport``.

Design: lifecycle (connection_made, then reading, then the waiter; close after the buffer drains),
fatal errors, flow control and fd ownership are :class:`multiloop.transport_base.FdTransport`'s. OSErrors of
reads and sends never reach it: they go to ``error_received``. Up to :data:`READS_PER_EVENT` datagrams are
delivered per readiness event (fewer loop passes under load); the batch stops as soon as the protocol pauses
reading or closes the transport.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import sys
from typing import Any

from ..seams import Loop
from ..transport_base import FdTransport
from .socketview import socket_extra

READS_PER_EVENT = 8
_DROP_EMPTY = sys.version_info < (3, 13)
_HEADER_BYTES = 8 if sys.version_info >= (3, 13) else 0
_TRY_AGAIN = (BlockingIOError, InterruptedError)


class DatagramSocketTransport(FdTransport, asyncio.DatagramTransport, asyncio.Transport):
    """A datagram endpoint on a non-blocking socket owned by this transport."""

    max_size = 256 * 1024  # largest datagram delivered whole (Unix datagrams can exceed 64 KiB)

    def __init__(self, loop: Loop, sock: socket.socket, protocol: asyncio.BaseProtocol, address: Any = None,
                 waiter: asyncio.Future[Any] | None = None, extra: dict[str, Any] | None = None) -> None:
        extra = socket_extra(sock, extra)
        super().__init__(loop, sock, sock.fileno(), protocol, waiter, extra)
        self._address = address  # remote_addr given at creation: the only allowed destination
        self._connected = extra["peername"] is not None
        self._buffer: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._recv_buf: bytearray | None = None

    @property
    def _sock(self) -> socket.socket | None:
        """The socket (stock asyncio's attribute name), None once the transport is closed."""
        return self._file

    # ----------------------------------------------------------------------------------- reading
    def _read_ready(self) -> None:
        buf = self._recv_buf
        if buf is None:
            buf = self._recv_buf = bytearray(self.max_size)
        recvfrom_into = self._file.recvfrom_into
        for _ in range(READS_PER_EVENT):
            if self._closing or self._paused:
                return  # closed (maybe with datagrams still to send) or paused by the protocol
            try:
                nbytes, addr = recvfrom_into(buf)
            except _TRY_AGAIN:
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._io_error(exc, "Fatal read error on datagram transport")
                return
            self._protocol.datagram_received(bytes(buf[:nbytes]), addr)

    def _io_error(self, exc: BaseException, message: str) -> None:
        """An OSError of a datagram socket is news for the protocol (``error_received``), not the end of the
        endpoint; anything else is fatal."""
        if isinstance(exc, OSError):
            self._protocol.error_received(exc)
        else:
            self._fatal_error(exc, message)

    # ----------------------------------------------------------------------------------- writing
    def _send(self, data: Any, addr: Any) -> None:
        if self._connected:
            self._file.send(data)
        else:
            self._file.sendto(data, addr)

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if _DROP_EMPTY and not data:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        # Stock asyncio (every version) drops writes after close only on a connected endpoint; an unconnected
        # one still sends (and reports errors) until its socket is gone (CPython gh-156920's test relies on it).
        if self._conn_lost and (self._address or self._file is None):
            self._write_after_lost()
            return
        if not self._buffer:
            try:
                self._send(data, addr)
                return
            except _TRY_AGAIN:
                self._start_writing()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._io_error(exc, "Fatal write error on datagram transport")
                return
        data = bytes(data)  # the caller may reuse its buffer once we return
        self._buffer.append((data, addr))
        self._bufsize += len(data) + _HEADER_BYTES
        self._maybe_pause_protocol()

    def _write_ready(self) -> None:
        buffer = self._buffer
        while buffer:
            data, addr = buffer[0]
            try:
                self._send(data, addr)
            except _TRY_AGAIN:
                break
            except OSError as exc:
                # This datagram is lost, as it would be on the network; the rest still go.
                buffer.popleft()
                self._bufsize -= len(data) + _HEADER_BYTES
                self._protocol.error_received(exc)
                if self._conn_lost:
                    return  # the protocol aborted us
                continue
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
            buffer.popleft()
            self._bufsize -= len(data) + _HEADER_BYTES
        self._maybe_resume_protocol()  # may append to the buffer
        if not buffer:
            self._write_done()

    def _release(self) -> None:
        super()._release()
        self._recv_buf = None
