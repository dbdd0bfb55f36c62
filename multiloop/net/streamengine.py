"""The per-event hot path of the socket stream transport: reading into the protocol, and write() while nothing is
buffered.

Facts that shape it:
- A transport must subclass ``asyncio.BaseTransport``, whose ``__slots__`` layout excludes an extension-type
  base, and compiled code pays a type lookup plus a descriptor call for every attribute of a Python-class
  instance: compiling the transport class itself measured slower than leaving it to the interpreter (see
  :mod:`multiloop.compiled`). An extension type of its own has its state in C fields instead.
- On an echo-style connection, nearly every event is the same two steps: one read that returns a small message
  which goes to ``data_received``, and one ``write()`` that the kernel takes whole. Everything else (EOF,
  errors, partial writes, flow control, closing) is rare and already right in Python.

Design: :class:`StreamEngine` is the transport's collaborator that does those two steps.
:class:`multiloop.net.transport.SocketTransport` stays the public object (isinstance, the API, every rare path)
and registers the engine itself (callable: :meth:`StreamEngine.__call__` reads) with the fd table as its reader,
so the core's dispatch runs it directly; the transport's ``write`` *is* :meth:`StreamEngine.write` (a slot holding the bound method). The
engine hands every rare case back to the transport: EOF (``_on_eof``), errors (``_fatal_error``), a write that
may not go straight out (``_write``), the rest of a partial write (``_write_rest``). The transport keeps the
engine's flags true: ``direct`` (a write may go straight to the kernel: nothing buffered, no EOF written, no
sendfile running, the connection not lost) and ``lost`` (the connection is lost: stop reading).

Compiled (Cython, from this file and ``streamengine.pxd``): the fields are C fields, and for a plain
``socket.socket`` recv/send are the syscalls on the socket's fd, read from the socket object each time (the
layout is checked at import time; see the ``.pxd``), with ``socket.recv_into``/``send``'s semantics (EINTR,
EAGAIN, OSError subclasses). As plain Python, the same steps through the socket's methods: what the transport
did before, one frame per event as before.
"""

from __future__ import annotations

import socket
from typing import Any

try:
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # running as plain Python without Cython installed
    from .. import _cython_shim as cython  # type: ignore[no-redef, unused-ignore]

#: A read at least this large switches the connection to recv() into a fresh bytes object (no copy).
LARGE_READ = 16 * 1024
#: What one such recv() asks for: the bytes object it allocates must stay below the C allocator's mmap
#: threshold (glibc: 128 KiB), or every read is an mmap, ~16 page faults per 64 KiB and an munmap.
LARGE_READ_SIZE = 120 * 1024
_TRY_AGAIN = (BlockingIOError, InterruptedError)


def _probe_socket_layout() -> bool:
    """Compiled: whether a socket object's fd can be read from its C struct (see streamengine.pxd)."""
    sock_type = socket.socket.__mro__[1]  # _socket.socket, the C type
    try:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError:
        return False
    with probe:
        if not ml_sock_probe(sock_type, probe, probe.fileno()):  # type: ignore[name-defined]  # noqa: F821
            return False
    if not ml_sock_probe(sock_type, probe, -1):  # type: ignore[name-defined]  # noqa: F821
        return False
    return bool(ml_sock_enable(sock_type))  # type: ignore[name-defined]  # noqa: F821


_SOCK_FAST = cython.compiled and _probe_socket_layout()


class StreamEngine:
    """Reads for, and writes straight through, one :class:`~multiloop.net.transport.SocketTransport`."""

    __slots__ = ("transport", "sock", "rview", "rbytes", "protocol", "buffered", "large_reads", "lost", "direct")

    def __init__(self, transport: Any, sock: socket.socket, rview: memoryview) -> None:
        self.transport = transport
        self.sock = sock
        #: The loop's shared read buffer; compiled, the bytearray under it is read into directly.
        self.rview = rview
        # Syscalls on the fd only for a plain socket.socket: a subclass may override recv_into/send, and then
        # those are what must run, as the transport always called them.
        self.rbytes = rview.obj if _SOCK_FAST and type(sock) is socket.socket and \
            type(rview.obj) is bytearray else None
        self.protocol: Any = None
        self.buffered = False
        self.large_reads = False  # the last read was large: read with recv()
        self.lost = False
        self.direct = True

    def set_protocol(self, protocol: Any, buffered: bool) -> None:
        # The protocol, not its bound methods: each would be an object per connection (memory per idle
        # connection is a target), and a method replaced on the protocol after connection_made is still the
        # one called, as with stock asyncio. A method call by name costs no allocation.
        self.protocol = protocol
        self.buffered = buffered

    def detach(self) -> None:
        """The connection is over: drop the protocol. The transport stays: a write() after this still reaches
        its ``_write``, which counts (and past a threshold logs) writes to a lost connection."""
        self.lost = True
        self.direct = False
        self.protocol = None

    def __repr__(self) -> str:
        return f"<StreamEngine of {self.transport!r}>"

    # ------------------------------------------------------------------------------------------ reading
    @cython.locals(n=cython.Py_ssize_t)
    def __call__(self) -> None:
        """The reader callback: the engine itself is what the fd table runs when the socket is readable (no bound
        method object per connection, and one indirection less per event)."""
        if self.lost:
            return
        if self.buffered:
            self._read_buffered()
            return
        if cython.compiled and self.rbytes is not None:
            data: Any = None
            try:
                if self.large_reads:
                    data = ml_recv_new(self.sock, LARGE_READ_SIZE)  # type: ignore[name-defined]  # noqa: F821
                    if data is None:
                        return  # would block
                    n = len(data)
                else:
                    n = ml_recv(self.sock, PyByteArray_AS_STRING(self.rbytes),  # type: ignore[name-defined]  # noqa: F821
                                PyByteArray_GET_SIZE(self.rbytes))  # type: ignore[name-defined]  # noqa: F821
                    if n < 0:
                        return  # would block
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.transport._fatal_error(exc, "Fatal read error on socket transport")
                return
            if not n:
                self.transport._on_eof()
                return
            if data is None:
                data = ml_bytes_of(self.rbytes, n)  # type: ignore[name-defined]  # noqa: F821
        else:
            data = None
            try:
                if self.large_reads:
                    data = self.sock.recv(LARGE_READ_SIZE)
                    n = len(data)
                else:
                    n = self.sock.recv_into(self.rview)
            except _TRY_AGAIN:
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.transport._fatal_error(exc, "Fatal read error on socket transport")
                return
            if not n:
                self.transport._on_eof()
                return
            if data is None:
                data = self.rview[:n].tobytes()
        self.large_reads = n >= LARGE_READ
        try:
            self.protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.transport._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _read_buffered(self) -> None:
        """A read for a BufferedProtocol: into the buffer it gives."""
        try:
            buf = self.protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.transport._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        try:
            n = self.sock.recv_into(buf)
        except _TRY_AGAIN:
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.transport._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not n:
            self.transport._on_eof()
            return
        try:
            self.protocol.buffer_updated(n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.transport._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    # ------------------------------------------------------------------------------------------ writing
    @cython.locals(n=cython.Py_ssize_t, size=cython.Py_ssize_t, raw=bytes)
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """The transport's ``write``: bytes go straight to the kernel when nothing stands in the way."""
        if not self.direct or type(data) is not bytes:
            self.transport._write(data)  # every check, and the buffered path
            return
        raw = data  # compiled: typed, so len() is a field read
        size = len(raw)
        if not size:
            return
        if cython.compiled and self.rbytes is not None:
            try:
                n = ml_send(self.sock, raw)  # type: ignore[name-defined]  # noqa: F821
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.transport._fatal_error(exc, "Fatal write error on socket transport")
                return
            if n < 0:
                n = 0  # would block
        else:
            try:
                n = self.sock.send(data)
            except _TRY_AGAIN:
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.transport._fatal_error(exc, "Fatal write error on socket transport")
                return
        if n != size:
            self.transport._write_rest(data, n)
