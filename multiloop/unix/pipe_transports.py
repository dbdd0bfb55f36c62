"""Read and write pipe transports: ``connect_read_pipe`` / ``connect_write_pipe``.

Facts that shape this module:

- A pipe, FIFO, socket or character device (tty, pty, /dev/null) can be polled; a regular file cannot on epoll
  (EPERM), while select() and poll() report it always ready. The core turns EPERM into "always ready", so a
  read transport on a regular file (``python app.py < data.txt``) works on every backend if it reads until
  EOF and then removes its reader, which it does for every file type anyway. Stock asyncio refuses regular
  files outright (ValueError) and fails with EPERM on epoll for /dev/null; multiloop accepts both for reading.
  Writing is restricted to the types stock asyncio accepts (a regular file is always "writable", there is no
  flow control to offer).
- Linux reports the write end of a pipe readable (POLLERR) when its last reader has gone, and a socket
  readable when the peer closed. A write transport therefore also watches its fd for reading: that is how it
  learns, without writing, that nobody will ever read again (stock asyncio does the same; it is the only way
  a child that exited is noticed on an idle stdin pipe).
- Reading a pty master whose slave side has closed fails with EIO: that is the tty's way of saying EOF, so it
  ends the connection quietly (connection_lost(exc)) instead of going to the exception handler.
- OSErrors on write (EPIPE, ECONNRESET) are expected when the reader goes away: they close the transport
  and reach the protocol through connection_lost(exc), not the exception handler. Anything else is a bug
  and is reported.

Callbacks, their order and the "writes after close are counted, then logged" rule follow asyncio exactly
(``connection_made`` then the first read; EOF = ``eof_received`` then ``connection_lost(None)``), because
streams and subprocess protocols depend on that order.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
import warnings
from typing import Any

logger = logging.getLogger("asyncio")

# After this many writes to a lost pipe, each further write logs a warning (asyncio's constant).
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5
DEFAULT_HIGH_WATER = 64 * 1024


def _set_result_unless_cancelled(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


def _unregister(loop: Any, fd: int, transport: Any) -> None:
    loop._fdtable.release(fd, transport)


def _drop_if_loop_closed(transport: Any) -> bool:
    """Closing a transport whose loop is closed (from __del__, at shutdown): no callbacks can run any
    more, so just release the fd."""
    loop = transport._loop
    if loop is None or not loop.is_closed() or transport._pipe is None:
        return False
    _unregister(loop, transport._fileno, transport)
    transport._pipe.close()
    transport._pipe = None
    transport._protocol = None
    transport._loop = None
    return True


class ReadPipeTransport(asyncio.ReadTransport):
    """Reads a pipe, FIFO, socket, character device or regular file until EOF."""

    max_size = 256 * 1024  # bytes read per readiness event (a regular file is read in slices of this size)

    def __init__(self, loop: Any, pipe: Any, protocol: asyncio.BaseProtocol,
                 waiter: asyncio.Future[Any] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(extra)
        self._extra["pipe"] = pipe
        self._loop = loop
        self._pipe = pipe
        self._fileno = pipe.fileno()
        self._protocol = protocol
        self._closing = False
        self._paused = False
        mode = os.fstat(self._fileno).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode) or stat.S_ISREG(mode)):
            self._pipe = None
            self._protocol = None
            raise ValueError("Pipe transport is for pipes/sockets only (multiloop also reads character devices "
                             f"and regular files; fd {self._fileno} is none of these)")
        os.set_blocking(self._fileno, False)
        loop._fdtable.claim(self._fileno, self)
        loop.call_soon(protocol.connection_made, self)
        # Start reading only after connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def _start_reading(self) -> None:
        if self.is_reading():
            self._loop._fdtable.add_reader(self._fileno, self._read_ready)

    def __repr__(self) -> str:
        state = "closed" if self._pipe is None else ("closing" if self._closing else
                                                     ("paused" if self._paused else "open"))
        return f"<{type(self).__name__} fd={self._fileno} {state}>"

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fileno, self.max_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if data:
            self._protocol.data_received(data)
            return
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._closing = True
        self._loop._fdtable.remove_reader(self._fileno)
        self._loop.call_soon(self._protocol.eof_received)
        self._loop.call_soon(self._call_connection_lost, None)

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if not self.is_reading():
            return
        self._paused = True
        self._loop._fdtable.remove_reader(self._fileno)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._loop._fdtable.add_reader(self._fileno, self._read_ready)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._close(None)

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on pipe transport") -> None:
        if isinstance(exc, OSError) and exc.errno == errno.EIO:
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({"message": message, "exception": exc, "transport": self,
                                               "protocol": self._protocol})
        self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        self._closing = True
        if _drop_if_loop_closed(self):
            return
        self._loop._fdtable.remove_reader(self._fileno)
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            _unregister(self._loop, self._fileno, self)
            self._pipe.close()
            self._pipe = None
            self._protocol = None
            self._loop = None


class WritePipeTransport(asyncio.WriteTransport):
    """Writes to a pipe, FIFO, socket or character device, buffering what the kernel does not take."""

    def __init__(self, loop: Any, pipe: Any, protocol: asyncio.BaseProtocol,
                 waiter: asyncio.Future[Any] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(extra)
        self._extra["pipe"] = pipe
        self._loop = loop
        self._pipe = pipe
        self._fileno = pipe.fileno()
        self._protocol = protocol
        self._buffer = bytearray()
        self._conn_lost = 0
        self._closing = False  # close() or write_eof() was called, or the pipe broke
        self._protocol_paused = False
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = DEFAULT_HIGH_WATER // 4
        mode = os.fstat(self._fileno).st_mode
        is_fifo = stat.S_ISFIFO(mode)
        is_socket = stat.S_ISSOCK(mode)
        if not (is_fifo or is_socket or stat.S_ISCHR(mode)):
            self._pipe = None
            self._protocol = None
            raise ValueError("Pipe transport is only for pipes, sockets and character devices")
        os.set_blocking(self._fileno, False)
        loop._fdtable.claim(self._fileno, self)
        loop.call_soon(protocol.connection_made, self)
        if is_fifo or is_socket:
            # Readable means the other end has gone (see the module docstring). Only after connection_made().
            loop.call_soon(self._watch_peer)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def _watch_peer(self) -> None:
        if not self._closing:
            self._loop._fdtable.add_reader(self._fileno, self._read_ready)

    def __repr__(self) -> str:
        state = "closed" if self._pipe is None else ("closing" if self._closing else "open")
        return f"<{type(self).__name__} fd={self._fileno} {state} bufsize={len(self._buffer)}>"

    # ------------------------------------------------------------------------------------ flow control
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low
        self._maybe_pause_protocol()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def _maybe_pause_protocol(self) -> None:
        if len(self._buffer) <= self._high_water or self._protocol_paused:
            return
        self._protocol_paused = True
        try:
            self._protocol.pause_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({"message": "protocol.pause_writing() failed", "exception": exc,
                                               "transport": self, "protocol": self._protocol})

    def _maybe_resume_protocol(self) -> None:
        if not self._protocol_paused or len(self._buffer) > self._low_water:
            return
        self._protocol_paused = False
        try:
            self._protocol.resume_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({"message": "protocol.resume_writing() failed", "exception": exc,
                                               "transport": self, "protocol": self._protocol})

    # ------------------------------------------------------------------------------------------- I/O
    def _read_ready(self) -> None:
        # The reader went away (or a socket peer sent data/closed, which a write pipe cannot accept either).
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._close(BrokenPipeError() if self._buffer else None)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if isinstance(data, bytearray):
            data = memoryview(data)  # the caller may reuse the bytearray
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            try:
                n = os.write(self._fileno, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._conn_lost += 1
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            if n == len(data):
                return
            if n > 0:
                data = memoryview(data)[n:]
            self._loop._fdtable.add_writer(self._fileno, self._write_ready)
        self._buffer += data
        self._maybe_pause_protocol()

    def _write_ready(self) -> None:
        try:
            n = os.write(self._fileno, self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._buffer.clear()
            self._conn_lost += 1
            self._loop._fdtable.remove_writer(self._fileno)
            self._fatal_error(exc, "Fatal write error on pipe transport")
            return
        if n == len(self._buffer):
            self._buffer.clear()
            self._loop._fdtable.remove_writer(self._fileno)
            self._maybe_resume_protocol()  # may write again
            if self._closing and not self._buffer:
                self._loop._fdtable.remove_reader(self._fileno)
                self._call_connection_lost(None)
        elif n > 0:
            del self._buffer[:n]
            self._maybe_resume_protocol()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing:
            return
        if self._pipe is None:
            raise RuntimeError(f"{self!r} is closed")
        self._closing = True
        if _drop_if_loop_closed(self):
            return
        if not self._buffer:
            self._loop._fdtable.remove_reader(self._fileno)
            self._loop.call_soon(self._call_connection_lost, None)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._pipe is not None and not self._closing:
            self.write_eof()  # a pipe has no other way to close gracefully: flush, then close

    def abort(self) -> None:
        self._close(None)

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on pipe transport") -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({"message": message, "exception": exc, "transport": self,
                                               "protocol": self._protocol})
        self._close(exc)

    def _close(self, exc: BaseException | None = None) -> None:
        if self._pipe is None:
            return
        self._closing = True
        if _drop_if_loop_closed(self):
            return
        if self._buffer:
            self._loop._fdtable.remove_writer(self._fileno)
        self._buffer.clear()
        self._loop._fdtable.remove_reader(self._fileno)
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._pipe is None:
            return  # abort() after close() already scheduled it
        try:
            self._protocol.connection_lost(exc)
        finally:
            _unregister(self._loop, self._fileno, self)
            self._pipe.close()
            self._pipe = None
            self._protocol = None
            self._loop = None
