"""Every seam between the loop core and the code built on it (``net/``, ``unix/``, TLS): what that code may use
of the loop beyond the public ``asyncio.AbstractEventLoop``, declared and typed in one place.

Facts that shape it:
- Stock asyncio's selector loop shares its internals with its transports by convention: transports write
  ``loop._transports``, call ``loop._add_reader`` and a few other private methods, servers call
  ``transport``/``server`` privates back. Nothing declares that contract, so alternative loops break when a
  CPython release renames one of those names, and a reader cannot tell what a transport depends on.
- A few private names are asyncio's own, and CPython's test suite or libraries call them on any loop
  (``_make_socket_transport``, ``_create_connection_transport``, ``_make_read_pipe_transport``,
  ``_make_write_pipe_transport``, ``_make_datagram_transport``). They are kept, with their stock signatures,
  and declared here like the rest.

Design:
- :class:`FdRegistry` is the core's fd table (:class:`multiloop.fdtable.FdTable`), a collaborator object the
  core owns and hands out as ``loop._fdtable``: registration that skips the public methods' ownership check,
  and fd ownership itself (claim/release/lookup), which the public ``add_reader`` & co. consult.
- :class:`LoopSeams` lists the loop's side; :class:`Loop` (``LoopSeams`` + ``asyncio.AbstractEventLoop``) is
  the type of ``loop`` wherever net/ and unix/ code holds one, and the base of every part of multiloop's loop
  class (the core and each feature mixin), so the type checker sees each seam implemented exactly once. It is
  a static contract: at run time ``Loop`` is ``asyncio.AbstractEventLoop`` itself.
- :class:`ConnectionTracker` is a server's connection accounting as its transports see it: they report their
  own start and end to it, never to the ``Server`` object.
- :class:`FdOwner` is what the fd table needs of an owner (a transport): whether it is closing, since a
  closing transport no longer blocks a new owner or the public ``add_reader``.

Nothing outside the core may read a private attribute of the loop that is not declared here.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

__all__ = ["FdOwner", "FdRegistry", "ConnectionTracker", "LoopSeams", "Loop"]


class FdOwner(Protocol):
    """An object that owns an fd in the loop (a transport)."""

    def is_closing(self) -> bool: ...


class FdRegistry(Protocol):
    """The core's fd table, as transports, servers, sock_* operations, signal and child watchers use it.

    Registration methods skip the public ``add_reader``/``add_writer`` check that the fd is not owned by a
    live transport: the owners themselves (and the loop's own fds) register through here. Adding a callback
    for a direction that already has one replaces it and cancels the old handle (asyncio's rule); removing one
    direction keeps the other registered. They raise the loop's "closed"/"forked" errors when adding, and
    return False (removing nothing) once the loop is closed.
    """

    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any,
                   context: contextvars.Context | None = None) -> asyncio.Handle:
        """Call ``callback(*args)`` each time ``fd`` is readable; the returned handle is the registration.
        It runs in ``context``, by default a copy of the current context (asyncio's rule)."""
        ...

    def add_writer(self, fd: int, callback: Callable[..., object], *args: Any,
                   context: contextvars.Context | None = None) -> asyncio.Handle:
        """Call ``callback(*args)`` each time ``fd`` is writable; the returned handle is the registration.
        It runs in ``context``, by default a copy of the current context (asyncio's rule)."""
        ...

    def remove_reader(self, fd: int) -> bool:
        """Stop watching ``fd`` for reading (its handle is cancelled). False if nothing was registered."""
        ...

    def remove_writer(self, fd: int) -> bool:
        """Stop watching ``fd`` for writing (its handle is cancelled). False if nothing was registered."""
        ...

    def claim(self, fd: int, owner: FdOwner) -> None:
        """Record ``owner`` as the owner of ``fd`` (weakly), or raise RuntimeError naming the live owner."""
        ...

    def release(self, fd: int, owner: FdOwner) -> None:
        """Forget ``owner`` as the owner of ``fd``; a no-op if another owner has claimed it since."""
        ...

    def check_unowned(self, fd: int) -> None:
        """RuntimeError if a transport that is not closing owns ``fd`` (asyncio's message)."""
        ...


class ConnectionTracker(Protocol):
    """A server's connection accounting (``wait_closed``, ``close_clients``, ``abort_clients`` need it).

    A transport made for an accepted connection attaches itself when it is created and detaches itself
    exactly once: when its connection is lost, or when it is collected without having been closed."""

    def attach(self, transport: asyncio.BaseTransport) -> None: ...

    def detach(self, transport: asyncio.BaseTransport) -> None: ...


class LoopSeams(Protocol):
    """What net/, unix/ and TLS code may use of the loop beyond ``asyncio.AbstractEventLoop``.

    Each member says why it exists. The core (:mod:`multiloop.core`) implements the state and checks; the
    feature mixins implement the transport factories next to the transports they build.
    """

    #: The fd table: registration without the ownership check, and fd ownership (see :class:`FdRegistry`).
    #: A collaborator rather than methods on the loop, so the one object that knows fds is visible as such.
    _fdtable: FdRegistry

    @property
    def backend(self) -> str:
        """The backend's name, for error and debug messages that must say which backend was waiting."""
        ...

    @property
    def _read_buffer(self) -> memoryview:
        """One 256 KiB scratch buffer per loop that stream transports ``recv_into`` and copy out of at once.

        Per loop, not per transport: a transport copies what it read before calling its protocol and a loop
        runs one callback at a time, so sharing is safe and saves a 256 KiB allocation (an mmap) per
        connection. Never shared across loops: ``recv_into`` releases the GIL."""
        ...

    def _check_closed(self) -> None:
        """Raise asyncio's "Event loop is closed" (or LoopForkedError in a forked child) before creating a
        transport or registering anything."""
        ...

    # ------------------------------------------------------------------------- transport factories
    # Stock asyncio names and signatures (CPython's tests and some libraries call them on any loop); the
    # Server and the stream, pipe and datagram methods build every transport through them.

    def _make_socket_transport(self, sock: socket.socket, protocol: asyncio.BaseProtocol,
                               waiter: asyncio.Future[Any] | None = None, *, extra: dict[str, Any] | None = None,
                               server: ConnectionTracker | None = None) -> asyncio.Transport:
        """A stream transport over the connected non-blocking ``sock``; connection_made, reading and
        ``waiter`` follow soon. ``server``: the accounting of the server that accepted the connection."""
        ...

    def _wrap_tls(self, rawsock: socket.socket, protocol: asyncio.BaseProtocol,
                  sslcontext: ssl.SSLContext | None, *, waiter: asyncio.Future[Any] | None = None,
                  server_side: bool = False, server_hostname: str | None = None,
                  extra: dict[str, Any] | None = None, server: ConnectionTracker | None = None,
                  ssl_handshake_timeout: float | None = None,
                  ssl_shutdown_timeout: float | None = None) -> asyncio.Transport:
        """TLS over ``rawsock`` (a socket transport carrying the TLS state machine); returns the transport
        the application uses. ``waiter`` resolves once the handshake is done. (multiloop's name: stock's
        ``_make_ssl_transport`` has a different contract.)"""
        ...

    async def _create_connection_transport(
            self, sock: socket.socket, protocol_factory: Callable[[], asyncio.BaseProtocol], ssl: Any,
            server_hostname: str | None, server_side: bool = False, ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Plain or TLS transport over a connected ``sock`` for a new protocol, once connection_made (and the
        handshake) are done: the common last step of TCP and Unix connections."""
        ...

    def _make_datagram_transport(self, sock: socket.socket, protocol: asyncio.BaseProtocol,
                                 address: Any = None, waiter: asyncio.Future[Any] | None = None,
                                 extra: dict[str, Any] | None = None) -> asyncio.DatagramTransport:
        """A datagram transport over ``sock``; ``address``: the only destination allowed (remote_addr)."""
        ...

    def _make_read_pipe_transport(self, pipe: Any, protocol: asyncio.BaseProtocol,
                                  waiter: asyncio.Future[Any] | None = None,
                                  extra: dict[str, Any] | None = None) -> asyncio.ReadTransport:
        """A read transport over the file object ``pipe`` (pipe, FIFO, socket, character device, file)."""
        ...

    def _make_write_pipe_transport(self, pipe: Any, protocol: asyncio.BaseProtocol,
                                   waiter: asyncio.Future[Any] | None = None,
                                   extra: dict[str, Any] | None = None) -> asyncio.WriteTransport:
        """A write transport over the file object ``pipe`` (pipe, FIFO, socket, character device)."""
        ...


if TYPE_CHECKING:
    class Loop(LoopSeams, asyncio.AbstractEventLoop):
        """asyncio's loop API plus :class:`LoopSeams`: the type of ``loop`` in transports, servers and
        watchers, and the base class of the core and of every feature mixin (they are all parts of one loop
        class), so the type checker sees each seam implemented exactly once (an unimplemented one makes
        ``EventLoop(...)`` an instantiation of an abstract class)."""
else:
    # At run time the contract is static only: the loop class stays a plain subclass of AbstractEventLoop,
    # without typing.Protocol/Generic (and ABCMeta) in its MRO, and without protocol stub methods that could
    # stand in, silently returning None, for a seam nobody implemented.
    Loop = asyncio.AbstractEventLoop
