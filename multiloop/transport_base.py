"""What every multiloop transport shares: lifecycle, the fatal-error rule, flow control and fd ownership.

Facts that shape it (asyncio's contract, which protocols, streams and CPython's tests depend on):
- ``connection_made`` is a protocol's first callback: it runs soon after the transport is created, then the
  transport starts reading, then the creation waiter is resolved (stock asyncio queues three callbacks; one
  callback doing the three in that order is indistinguishable and cheaper per accepted connection). An
  exception from ``connection_made`` goes to the exception handler and the rest still happens, as with a
  failing callback.
- ``connection_lost`` is the last callback, called exactly once, after ``connection_made``; only then is the
  fd unregistered, released by its owner and closed. ``close()`` flushes the write buffer first; ``abort()``
  (and ``_force_close(exc)``, the name ``asyncio.sslproto`` calls) drop it. Writes after the connection is
  lost are counted and, past a threshold, logged (never raised).
- A transport dropped without being closed warns ``ResourceWarning: unclosed transport`` and closes its fd.
- A closed loop runs no callbacks: closing a transport then (from ``__del__`` of a subprocess at shutdown, or
  a test cleaning up late) releases the fd at once instead of failing with "Event loop is closed".
- Contexts: a callback runs in a copy of the context its registration was made in (so ``resume_reading``
  called from a task makes later ``data_received`` calls see that task's variables), except, from 3.15 on
  (CPython gh-140947), on a connection a server accepted: every callback of its protocol runs in the one
  context the connection was accepted in (``_context``).
- Fatal errors, what stock asyncio does (3.11-3.13): on a socket transport (stream or datagram) and on a write
  pipe, *every* OSError is the connection's normal end (peer reset, broken pipe); on a read pipe only EIO is
  (a pty whose other side closed), any other OSError there is reported. Anything that is not an OSError is a
  bug wherever it happens.

The rule, stated once: :meth:`FdTransport._fatal_error` treats an error as the connection's normal end when
it is an OSError whose errno the transport kind declares in ``QUIET_ERRNOS`` (``None``: every errno). Such
an error is logged only in debug mode; any other goes to the loop's exception handler. Either way the
transport is force-closed and the protocol gets ``connection_lost(exc)``. Kinds declare only that data.

Design: :class:`TransportBase` (protocol, closing state, the unclosed-at-collection warning) is shared with
the subprocess transport, which owns no fd; :class:`FdTransport` adds everything for a transport over one fd.
The kinds (:mod:`multiloop.net.transport`, :mod:`multiloop.net.datagram_transport`,
:mod:`multiloop.unix.pipe_transports`) keep only their I/O: what a read does, what a write does, what EOF
means. The base talks to the loop only through :mod:`multiloop.seams` (``loop._fdtable``). It is a top-level
module, next to :mod:`multiloop.fdtable` and :mod:`multiloop.flowcontrol`, because both ``net/`` and
``unix/`` build on it; each concrete transport stays next to the loop methods that create it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import warnings
from typing import Any, ClassVar

from .flowcontrol import water_marks
from .seams import ConnectionTracker, Loop

logger = logging.getLogger("asyncio")

# Stock asyncio's constant (asyncio.constants is private): warn after this many writes to a lost connection.
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5
#: 3.15: the callbacks of a server's connection all run in one context (see the module docstring).
SERVER_CONNECTION_CONTEXT = sys.version_info >= (3, 15)


async def wait_made(transport: asyncio.BaseTransport, waiter: asyncio.Future[Any]) -> None:
    """Wait for a new transport's creation ``waiter`` (connection_made has run; for TLS, the handshake is
    done); if that fails or the caller is cancelled, close the transport before raising (asyncio's rule for
    every ``create_*``/``connect_*`` method)."""
    try:
        await waiter
    except BaseException:
        transport.close()
        raise


class TransportBase(asyncio.BaseTransport):
    """The protocol, the closing state, and the "unclosed transport" warning at collection.

    State is in ``__slots__`` (here and in the hot kinds): an attribute read then costs a descriptor lookup, not
    a dictionary probe (in compiled code, where there is no specialising interpreter, that is most of what a
    read costs), and an idle connection carries no per-instance dictionary. ``__dict__`` stays available for
    what code outside multiloop sets on a transport (a dictionary made on first use)."""

    __slots__ = ("_protocol", "_closing", "__weakref__", "__dict__")
    _extra: dict[str, Any]  # asyncio.BaseTransport's slot
    _protocol: Any
    _closing: bool

    def get_protocol(self) -> Any:
        return self._protocol

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def is_closing(self) -> bool:
        return self._closing

    def _holds_resources(self) -> bool:
        """Whether the transport still holds what ``close()`` would release (checked at collection)."""
        raise NotImplementedError

    def _release_at_collection(self) -> None:
        """Release what an unclosed transport holds; no loop callback may run from here."""
        raise NotImplementedError

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._holds_resources():
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._release_at_collection()


class FdTransport(TransportBase):
    """A transport over one fd it owns: lifecycle, fatal errors, reading control, write flow control.

    A kind calls ``__init__`` once its own checks have passed (the fd is claimed first: RuntimeError if a live
    transport owns it), implements ``_read_ready`` (registered while reading) and its write methods, keeps
    ``_bufsize`` equal to what its ``_buffer`` holds, and calls ``_start_writing``/``_write_done`` around a
    flush. ``watch_read=False``: the kind registers no reader at start.
    """

    #: errnos that end the connection quietly (see the module docstring); None: every OSError does.
    QUIET_ERRNOS: ClassVar[frozenset[int] | None] = None
    #: What is logged for each write past LOG_THRESHOLD_FOR_CONNLOST_WRITES after the connection was lost.
    LOST_WRITE_WARNING: ClassVar[str] = "socket.send() raised exception."

    __slots__ = ("_loop", "_file", "_fd", "_conn_lost", "_paused", "_read_eof", "_reader_on", "_writer_on",
                 "_bufsize", "_protocol_paused", "_server", "_buffer", "_context")
    _file: Any  # the socket or file object; None once released (__del__ may run on a half-made object)
    _server: ConnectionTracker | None
    _bufsize: int
    _read_eof: bool  # the peer's EOF arrived: nothing more to read, ever (resume_reading must not re-watch)
    _buffer: Any  # the kind's write buffer (deque of chunks, bytearray...; may be a falsy placeholder)
    # Flow-control limits: class defaults until set_write_buffer_limits() stores them in the instance's
    # __dict__ (made then): most connections never change them and should not carry them.
    _high_water, _low_water = water_marks(None, None)

    def __init__(self, loop: Loop, file: Any, fd: int, protocol: Any, waiter: asyncio.Future[Any] | None,
                 extra: dict[str, Any] | None, server: ConnectionTracker | None = None, *,
                 watch_read: bool = True) -> None:
        super().__init__(extra)
        self._file = None  # before the claim: a failed claim leaves a transport that holds nothing
        self._closing = False
        loop._fdtable.claim(fd, self)
        self._loop = loop
        self._file = file
        self._fd = fd
        self._protocol = protocol
        self._conn_lost = 0  # > 0 once connection_lost is scheduled; counts writes after that
        self._paused = False  # pause_reading()
        self._read_eof = False
        self._reader_on = False
        self._writer_on = False
        self._bufsize = 0
        self._protocol_paused = False  # pause_writing() told to the protocol, resume_writing() not yet
        self._server = server
        self._context = contextvars.copy_context() if server is not None and SERVER_CONNECTION_CONTEXT else None
        if server is not None:
            server.attach(self)
        loop.call_soon(self._start, waiter, watch_read, context=self._context)

    def _start(self, waiter: asyncio.Future[Any] | None, watch_read: bool) -> None:
        try:
            self._protocol.connection_made(self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": f"Exception in callback {self._protocol!r}.connection_made()",
                "exception": exc, "transport": self, "protocol": self._protocol})
        if watch_read and not self._closing and not self._paused and self._file is not None:
            self._start_reading()
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __repr__(self) -> str:
        info = [type(self).__name__, f"fd={self._fd}"]
        if self._file is None:
            info.append("closed")
        else:
            info.append("closing" if self._closing else "open")
            info.append("read=polling" if self._reader_on else "read=idle")
            info.append(f"write=<{'polling' if self._writer_on else 'idle'}, bufsize={self._bufsize}>")
        return f"<{' '.join(info)}>"

    # ------------------------------------------------------------------------------- registration
    def _read_ready(self) -> None:
        raise NotImplementedError

    def _write_ready(self) -> None:
        raise NotImplementedError

    def _start_reading(self) -> None:
        self._loop._fdtable.add_reader(self._fd, self._read_ready, context=self._context)
        self._reader_on = True

    def _stop_reading(self) -> None:
        if self._reader_on:
            self._reader_on = False
            self._loop._fdtable.remove_reader(self._fd)

    def _start_writing(self) -> None:
        self._loop._fdtable.add_writer(self._fd, self._write_ready, context=self._context)
        self._writer_on = True

    def _stop_writing(self) -> None:
        if self._writer_on:
            self._writer_on = False
            self._loop._fdtable.remove_writer(self._fd)

    # ------------------------------------------------------------------------------------ reading
    def is_reading(self) -> bool:
        return not self._closing and not self._paused

    def pause_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._paused = True
        self._stop_reading()
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        if self._read_eof:
            return  # watching an fd at EOF would report it again, and eof_received() would run twice
        self._start_reading()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    # -------------------------------------------------------------------------------- writing
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
        self._tell_protocol("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if not self._protocol_paused or self._bufsize > self._low_water:
            return
        self._protocol_paused = False
        self._tell_protocol("resume_writing")

    def _tell_protocol(self, method: str) -> None:
        try:
            getattr(self._protocol, method)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": f"protocol.{method}() failed", "exception": exc, "transport": self,
                "protocol": self._protocol})

    def _write_after_lost(self) -> None:
        if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            logger.warning(self.LOST_WRITE_WARNING)
        self._conn_lost += 1

    def _drop_buffer(self) -> None:
        if self._buffer:
            self._buffer.clear()
        self._bufsize = 0
        self._stop_writing()

    def _write_done(self) -> None:
        """The buffer is empty after a flush: stop watching for writability; if ``close()`` was waiting for
        this, the connection ends now."""
        self._stop_writing()
        if self._closing and not self._conn_lost:
            self._conn_lost += 1
            self._call_connection_lost(None)

    # ------------------------------------------------------------------------------------ closing
    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._bufsize:
            self._lose(None)

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        quiet = self.QUIET_ERRNOS
        if isinstance(exc, OSError) and (quiet is None or exc.errno in quiet):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                "message": message, "exception": exc, "transport": self, "protocol": self._protocol})
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._bufsize:
            self._drop_buffer()
        if not self._closing:
            self._closing = True
            self._stop_reading()
        self._lose(exc)

    def _lose(self, exc: BaseException | None) -> None:
        """Schedule connection_lost(exc) (once: _conn_lost guards every caller)."""
        self._conn_lost += 1
        if self._loop.is_closed():
            self._release()  # no callback can run any more (see the module docstring)
        else:
            self._loop.call_soon(self._call_connection_lost, exc, context=self._context)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._file is None:
            return  # released already (abort() after close(), or a closed loop)
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._release()

    def _release(self) -> None:
        """Unregister the fd, give up its ownership, close it, and tell the server the connection ended."""
        file, self._file = self._file, None
        if file is None:
            return
        self._stop_reading()
        self._stop_writing()
        self._loop._fdtable.release(self._fd, self)
        file.close()
        self._protocol = None
        server, self._server = self._server, None
        if server is not None:
            server.detach(self)

    def _holds_resources(self) -> bool:
        return getattr(self, "_file", None) is not None  # unset: __init__ failed before the claim

    def _release_at_collection(self) -> None:
        # Registered handles would keep us alive, so there are none; the fd table forgets owners weakly.
        file, self._file = self._file, None
        file.close()
        server, self._server = self._server, None
        if server is not None:
            server.detach(self)
