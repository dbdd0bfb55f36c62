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
- Stock asyncio's fatal-error data, kept: a read pipe ends quietly on EIO only (any other read error is
  reported), a write pipe on every OSError (EPIPE, ECONNRESET when the reader goes away). The rule itself,
  lifecycle, flow control and fd ownership are :class:`multiloop.transport_base.FdTransport`'s.

Callbacks, their order and the "writes after close are counted, then logged" rule follow asyncio exactly
(``connection_made`` then the first read; EOF = ``eof_received`` then ``connection_lost(None)``), because
streams and subprocess protocols depend on that order. ``close()`` of a write pipe is ``write_eof()``: flush,
then close (a pipe has no other way to end gracefully).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
from typing import Any

from ..seams import Loop
from ..transport_base import FdTransport

logger = logging.getLogger("asyncio")

_TRY_AGAIN = (BlockingIOError, InterruptedError)


class _PipeTransport(FdTransport):
    """What both directions share: the file object under stock asyncio's name ``_pipe``."""

    @property
    def _pipe(self) -> Any:
        """The file object, None once closed (stock asyncio's name; CPython's tests set it to None to
        silence the unclosed-transport warning of a transport they leak on purpose)."""
        return self._file

    @_pipe.setter
    def _pipe(self, value: Any) -> None:
        self._file = value


def _file_type(pipe: Any) -> tuple[int, int]:
    fd = pipe.fileno()
    return fd, os.fstat(fd).st_mode


class ReadPipeTransport(_PipeTransport, asyncio.ReadTransport):
    """Reads a pipe, FIFO, socket, character device or regular file until EOF."""

    QUIET_ERRNOS = frozenset({errno.EIO})
    max_size = 256 * 1024  # bytes read per readiness event (a regular file is read in slices of this size)

    def __init__(self, loop: Loop, pipe: Any, protocol: asyncio.BaseProtocol,
                 waiter: asyncio.Future[Any] | None = None, extra: dict[str, Any] | None = None) -> None:
        fd, mode = _file_type(pipe)
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode) or stat.S_ISREG(mode)):
            raise ValueError("Pipe transport is for pipes/sockets only (multiloop also reads character devices "
                             f"and regular files; fd {fd} is none of these)")
        os.set_blocking(fd, False)
        super().__init__(loop, pipe, fd, protocol, waiter, {**(extra or {}), "pipe": pipe})

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fd, self.max_size)
        except _TRY_AGAIN:
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
        self._stop_reading()
        self._loop.call_soon(self._protocol.eof_received)
        self._lose(None)


class WritePipeTransport(_PipeTransport, asyncio.WriteTransport):
    """Writes to a pipe, FIFO, socket or character device, buffering what the kernel does not take.

    Its reader (FIFOs and sockets only) is the peer watch: readable means the reader has gone."""

    LOST_WRITE_WARNING = "pipe closed by peer or os.write(pipe, data) raised exception."

    def __init__(self, loop: Loop, pipe: Any, protocol: asyncio.BaseProtocol,
                 waiter: asyncio.Future[Any] | None = None, extra: dict[str, Any] | None = None) -> None:
        fd, mode = _file_type(pipe)
        watch_peer = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        if not (watch_peer or stat.S_ISCHR(mode)):
            raise ValueError("Pipe transport is only for pipes, sockets and character devices")
        os.set_blocking(fd, False)
        self._buffer = bytearray()
        super().__init__(loop, pipe, fd, protocol, waiter, {**(extra or {}), "pipe": pipe},
                         watch_read=watch_peer)

    def _read_ready(self) -> None:
        # The reader went away (or a socket peer sent data/closed, which a write pipe cannot accept either).
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._force_close(BrokenPipeError() if self._buffer else None)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if isinstance(data, bytearray):
            data = memoryview(data)  # the caller may reuse the bytearray
        if not data:
            return
        if self._conn_lost or self._closing:
            self._write_after_lost()
            return
        if not self._buffer:
            try:
                n = os.write(self._fd, data)
            except _TRY_AGAIN:
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            if n == len(data):
                return
            if n > 0:
                data = memoryview(data)[n:]
            self._start_writing()
        self._buffer += data
        self._bufsize = len(self._buffer)
        self._maybe_pause_protocol()

    def _write_ready(self) -> None:
        try:
            n = os.write(self._fd, self._buffer)
        except _TRY_AGAIN:
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._drop_buffer()
            self._fatal_error(exc, "Fatal write error on pipe transport")
            return
        del self._buffer[:n]
        self._bufsize = len(self._buffer)
        self._maybe_resume_protocol()  # may write again
        if not self._buffer:
            self._write_done()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing:
            return
        if self._file is None:
            raise RuntimeError(f"{self!r} is closed")
        self._closing = True
        if not self._buffer:
            self._stop_reading()
            self._lose(None)

    def close(self) -> None:
        if self._file is not None and not self._closing:
            self.write_eof()
