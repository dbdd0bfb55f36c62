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

Design: connection_made, start of reading and the creation waiter are scheduled in that order with
call_soon, as stock asyncio does, so a protocol's first callback is always connection_made. Up to
:data:`READS_PER_EVENT` datagrams are delivered per readiness event (fewer loop passes under load); the batch
stops as soon as the protocol pauses reading or closes the transport.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import sys
import warnings
from typing import Any

from multiloop.flowcontrol import water_marks

from .socketview import wrap_socket

logger = logging.getLogger("asyncio")

READS_PER_EVENT = 8
_DROP_EMPTY = sys.version_info < (3, 13)
_HEADER_BYTES = 8 if sys.version_info >= (3, 13) else 0
_LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5  # same threshold as stock asyncio


def _set_result_unless_cancelled(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.set_result(None)


class DatagramSocketTransport(asyncio.DatagramTransport, asyncio.Transport):
    """A datagram endpoint on a non-blocking socket owned by this transport."""

    max_size = 256 * 1024  # largest datagram delivered whole (Unix datagrams can exceed 64 KiB)
    _extra: dict[str, Any]  # set by asyncio.BaseTransport.__init__

    def __init__(
        self,
        loop: Any,
        sock: socket.socket,
        protocol: asyncio.DatagramProtocol,
        address: Any = None,
        waiter: asyncio.Future[Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra)
        fd = sock.fileno()
        owner = loop._transports.get(fd)
        if owner is not None and not owner.is_closing():
            raise RuntimeError(f"File descriptor {fd} is used by transport {owner!r}")
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._sock_fd = fd
        self._protocol: Any = protocol
        self._address = address  # remote_addr given at creation: the only allowed destination
        self._extra["socket"] = wrap_socket(sock)  # a view without close/send: the transport owns the socket
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._connected = self._extra["peername"] is not None
        self._buffer: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._buffer_size = 0
        self._closing = False
        self._conn_lost = 0
        self._paused = False
        self._recv_buf: bytearray | None = None
        self._protocol_paused = False
        self._high_water = 64 * 1024
        self._low_water = 16 * 1024
        loop._transports[fd] = self
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter)

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else "closing" if self._closing else "open"
        return (
            f"<{type(self).__name__} fd={self._sock_fd} {state} "
            f"bufsize={self._buffer_size} peer={self._extra.get('peername')!r}>"
        )

    # ------------------------------------------------------------------------------------- state
    def is_closing(self) -> bool:
        return self._closing

    def get_protocol(self) -> Any:
        return self._protocol

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def is_reading(self) -> bool:
        return not self._closing and not self._paused

    def pause_reading(self) -> None:
        if not self.is_reading():
            return
        self._paused = True
        self._loop._remove_reader(self._sock_fd)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._loop._add_reader(self._sock_fd, self._read_ready)

    # ----------------------------------------------------------------------------------- reading
    def _start_reading(self) -> None:
        if self.is_reading():
            self._loop._add_reader(self._sock_fd, self._read_ready)

    def _read_ready(self) -> None:
        buf = self._recv_buf
        if buf is None:
            buf = self._recv_buf = bytearray(self.max_size)
        for _ in range(READS_PER_EVENT):
            if self._closing or self._paused:
                return  # closed (maybe with datagrams still to send) or paused by the protocol
            try:
                nbytes, addr = self._sock.recvfrom_into(buf)  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            self._protocol.datagram_received(bytes(buf[:nbytes]), addr)

    # ----------------------------------------------------------------------------------- writing
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
        if self._conn_lost and (self._address or self._sock is None):
            if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            try:
                if self._connected:
                    self._sock.send(data)  # type: ignore[union-attr]
                else:
                    self._sock.sendto(data, addr)  # type: ignore[union-attr]
                return
            except (BlockingIOError, InterruptedError):
                self._loop._add_writer(self._sock_fd, self._sendto_ready)
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        data = bytes(data)  # the caller may reuse its buffer once we return
        self._buffer.append((data, addr))
        self._buffer_size += len(data) + _HEADER_BYTES
        self._maybe_pause_protocol()

    def _sendto_ready(self) -> None:
        buffer = self._buffer
        while buffer:
            data, addr = buffer[0]
            try:
                if self._connected:
                    self._sock.send(data)  # type: ignore[union-attr]
                else:
                    self._sock.sendto(data, addr)  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                # This datagram is lost, as it would be on the network; the rest still go.
                buffer.popleft()
                self._buffer_size -= len(data) + _HEADER_BYTES
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
            self._buffer_size -= len(data) + _HEADER_BYTES
        self._maybe_resume_protocol()  # may append to the buffer
        if not buffer:
            self._loop._remove_writer(self._sock_fd)
            if self._closing and not self._conn_lost:
                self._conn_lost += 1
                self._call_connection_lost(None)

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    # ------------------------------------------------------------------------------ flow control
    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high_water, self._low_water = water_marks(high, low)
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._buffer_size <= self._high_water or self._protocol_paused:
            return
        self._protocol_paused = True
        self._call_protocol("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self._buffer_size <= self._low_water:
            self._protocol_paused = False
            self._call_protocol("resume_writing")

    def _call_protocol(self, name: str) -> None:
        try:
            getattr(self._protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": f"protocol.{name}() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )

    # ----------------------------------------------------------------------------------- closing
    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop._remove_reader(self._sock_fd)
        if not self._buffer:
            self._conn_lost += 1
            self._loop._remove_writer(self._sock_fd)
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
            )
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
            self._loop._remove_writer(self._sock_fd)
        if not self._closing:
            self._closing = True
            self._loop._remove_reader(self._sock_fd)
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            sock, self._sock = self._sock, None
            if sock is not None:
                if self._loop._transports.get(self._sock_fd) is self:
                    del self._loop._transports[self._sock_fd]
                sock.close()
            self._protocol = None
            self._recv_buf = None

    def __del__(self, _warn: Any = warnings.warn) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            sock.close()
