"""``Server`` (what create_server / create_unix_server return) and the accept loop behind it.

Facts:
- A listening socket is reported readable once however many connections are queued; accepting one per event
  would cost one loop pass per connection under a burst. We accept up to ``backlog`` per event.
- When the process is out of descriptors (EMFILE/ENFILE) or the kernel out of memory (ENOBUFS/ENOMEM),
  ``accept`` fails while the connection stays queued, so a level-triggered backend reports the socket ready
  again at once: the loop would spin at 100 % CPU. We stop watching the socket (a *pause*), tell the
  exception handler once, and retry after ``ACCEPT_RETRY_DELAY`` seconds (stock asyncio's 1 s), so the server
  survives descriptor exhaustion.
- A retry accepts at once instead of re-arming the socket and waiting for the next readiness report: the
  connections are queued already. A retry that fails again starts a new pause (reported again: at most one
  report per delay, never a spin).
- Under a connection flood the descriptors that come free first are usually the server's own: its
  connections end. Each time one of them ends during a pause, the paused sockets retry at once (once per
  loop pass however many ended, silently if still out of descriptors), so a flood that stops is served again
  without waiting out the delay. Descriptors freed elsewhere are found by the timed retry.
- Stock asyncio starts a Task per accepted connection. A plain TCP connection needs none: the protocol and
  transport are created right in the accept callback, through the loop's transport factories
  (``_make_socket_transport``, or ``_wrap_tls`` for TLS, where a callback on the handshake waiter closes
  failed connections).

Lifecycle semantics are each Python's own, where user code can tell (stock ``asyncio.base_events.Server``):
- ``wait_closed``: from 3.12 on it returns once the server is closed *and* its last connection is gone, in
  either order. On 3.11 it returns at once when the server is already closed, connections or not, which is
  what lets a cancelled ``serve_forever`` (Ctrl-C in ``async with server: await server.serve_forever()``)
  finish while clients are still connected.
- A cancelled ``serve_forever`` closes the server and waits in ``wait_closed``; from 3.14 on it closes the
  clients first (so a hanging client cannot block it), on 3.12/3.13 it waits for them.
- Contexts: stock asyncio runs each accepted connection in a fresh context (before 3.15 a task per accept,
  copying the accept callback's context; from 3.15 a copy of the context the server was created in). So a
  ``ContextVar`` set by one connection's protocol factory is never seen by the next one's.
- Transports ``_attach``/``_detach`` themselves (3.13+ passes the transport, 3.11/3.12 code calls them
  bare, counting); one ``_detach`` too many is an error, as stock's assertion makes it, rather than a
  count gone negative that ``wait_closed`` would wait on forever.
- ``close_clients``/``abort_clients`` (3.13) are offered on every Python. ``listen()`` is called when serving
  starts, not when the socket is bound.

Design: the connection accounting is its own object (:class:`Connections`, a
:class:`multiloop.seams.ConnectionTracker`) that the server hands to the transport factories; transports
attach and detach themselves there, and never call the ``Server``. Stock's ``Server._attach``/``_detach``
still work (CPython 3.12's tests call them without a transport).
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import logging
import os
import socket
import sys
import weakref
from collections.abc import Callable
from typing import Any

from ..seams import Loop
from .socketview import wrap_socket

logger = logging.getLogger("asyncio")

ACCEPT_RETRY_DELAY = 1.0
_PY = sys.version_info[:2]
#: 3.11: wait_closed() on a closed server returns at once (see the module docstring).
WAIT_CLOSED_RETURNS_WHEN_CLOSED = _PY < (3, 12)
#: 3.14: a cancelled serve_forever() closes the clients before waiting for them.
SERVE_FOREVER_CLOSES_CLIENTS = _PY >= (3, 14)
#: 3.15: connections run in a copy of the context the server was created in (else of the accept's context).
CONNECTIONS_IN_SERVER_CONTEXT = _PY >= (3, 15)
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _Listener:
    """One listening socket of a server: its accept callback and its pause on resource exhaustion.

    ``retry`` is the timer of the current pause (None: not paused). ``starved``: the last accept attempt
    failed for lack of descriptors or memory."""

    __slots__ = ("sock", "fd", "server", "retry", "starved", "unix_path", "unix_ino", "__weakref__")

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.server = server
        self.retry: asyncio.TimerHandle | None = None
        self.starved = False
        self.unix_path: Any = None  # set when the socket file should be unlinked on close (cleanup_socket)
        self.unix_ino = 0

    def start(self) -> None:
        self.retry = None
        self.server._loop._fdtable.add_reader(self.fd, self.on_readable)

    def stop(self) -> None:
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        self.server._loop._fdtable.remove_reader(self.fd)

    def on_readable(self) -> None:
        server = self.server
        loop = server._loop
        accept = self.sock.accept
        for _ in range(server._backlog):
            try:
                conn, addr = accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # queue drained (or the peer gave up before we got to it)
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._pause(exc)
                else:
                    loop.call_exception_handler({
                        "message": f"socket.accept() failed (multiloop backend {loop.backend})",
                        "exception": exc, "socket": wrap_socket(self.sock)})
                return
            try:
                conn.setblocking(False)
            except OSError:  # reset before we could use it
                conn.close()
                continue
            if loop.get_debug():
                logger.debug("%r got a new connection from %r: %r", server, addr, conn)
            # A fresh context per connection, as stock asyncio's per-accept task (or 3.15's copy) gives.
            base = server._context if server._context is not None else contextvars.copy_context()
            base.copy().run(server._connection_accepted, conn, addr)
            if not server._serving:
                return  # a protocol factory closed the server: this socket is closed now

    def _pause(self, exc: OSError) -> None:
        self.starved = True
        loop = self.server._loop
        # Level-triggered backends would report the queued connection again at once: stop watching.
        loop._fdtable.remove_reader(self.fd)
        if self.retry is not None:
            return  # an early retry found nothing free yet: this pause goes on (and was reported)
        loop.call_exception_handler({
            "message": "socket.accept() out of system resource",
            "exception": exc, "socket": wrap_socket(self.sock)})
        self.retry = loop.call_later(ACCEPT_RETRY_DELAY, self._retry_after_delay)
        self.server._listener_paused()

    def _try_accepting(self) -> None:
        """Watch the socket again and accept what is queued now, without waiting for a readiness report."""
        self.starved = False
        self.server._loop._fdtable.add_reader(self.fd, self.on_readable)
        self.on_readable()
        if not self.starved and self.retry is not None:  # resumed before the delay was over
            self.retry.cancel()
            self.retry = None

    def _retry_after_delay(self) -> None:
        self.retry = None  # a failure now is a new pause, reported again
        self._try_accepting()

    def retry_early(self) -> None:
        """A descriptor came free (a connection of this server ended): if paused, try accepting now."""
        if self.retry is not None and self.server._serving:
            self._try_accepting()

    def close(self) -> None:
        self.stop()
        path, ino = self.unix_path, self.unix_ino
        self.sock.close()
        if path is not None:
            unlink_if_same_socket(path, ino)


def unlink_if_same_socket(path: Any, ino: int) -> None:
    """Remove the socket file at ``path`` if it is still the one we bound (same inode)."""
    try:
        if os.stat(path).st_ino == ino:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)


class Connections:
    """A server's live connections and the ``wait_closed`` callers waiting for them to end
    (:class:`multiloop.seams.ConnectionTracker`). Waiters wake once the server is closed and the last
    connection has detached, in either order."""

    __slots__ = ("clients", "anonymous", "waiters", "server_closed", "on_detach")

    def __init__(self) -> None:
        # Weak: a transport the user dropped must still be collectable (and warn "unclosed transport"). A set
        # of plain weak references, not a WeakSet: ``weakref.ref(t)`` without a callback is the one reference
        # object CPython keeps per object, which the loop's fd table already made for the transport, so a
        # client costs a set entry here instead of a reference of its own with a callback (~120 bytes per
        # idle connection). A reference whose transport was collected without detaching is dropped when met.
        self.clients: set[weakref.ref[asyncio.BaseTransport]] = set()
        self.anonymous = 0  # Server._attach() calls without a transport (CPython 3.12's tests)
        # None once woken: "closed and empty", wait_closed returns at once.
        self.waiters: list[asyncio.Future[None]] | None = []
        self.server_closed = False
        #: Called after each detach while the server wants to know (a listener is paused, out of descriptors).
        self.on_detach: Callable[[], None] | None = None

    def attach(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is None:
            self.anonymous += 1
        else:
            self.clients.add(weakref.ref(transport))

    def detach(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is None:
            if self.anonymous <= 0:
                raise RuntimeError("Server._detach() called more often than _attach()")
            self.anonymous -= 1
        else:
            self.clients.discard(weakref.ref(transport))  # equal to the one added while it lives
        self._wake_if_done()
        if self.on_detach is not None:
            self.on_detach()

    def close(self) -> None:
        """The server stopped listening: waiters wake now, or when the last connection detaches."""
        self.server_closed = True
        self._wake_if_done()

    def live_clients(self) -> list[asyncio.BaseTransport]:
        """The connections still alive (a transport collected without detaching is forgotten here)."""
        alive = []
        for ref in list(self.clients):
            transport = ref()
            if transport is None:
                self.clients.discard(ref)
            else:
                alive.append(transport)
        return alive

    def _wake_if_done(self) -> None:
        if not self.server_closed or self.anonymous or (self.clients and self.live_clients()):
            return
        waiters, self.waiters = self.waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)


class Server(asyncio.AbstractServer):
    """A listening server: its sockets, their accept loops, and the connections they made.

    ``unlink_on_close``: (path, inode) of a Unix socket file to remove on close if it is still ours."""

    def __init__(self, loop: Loop, sockets: list[socket.socket], protocol_factory: Callable[[], Any],
                 ssl_context: Any, backlog: int, ssl_handshake_timeout: float | None,
                 ssl_shutdown_timeout: float | None = None, *,
                 unlink_on_close: tuple[Any, int] | None = None) -> None:
        self._loop = loop
        self._listeners: list[_Listener] | None = [_Listener(self, s) for s in sockets]
        if unlink_on_close is not None:
            self._listeners[0].unix_path, self._listeners[0].unix_ino = unlink_on_close
        self._connections = Connections()
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._serving = False
        self._serving_forever_fut: asyncio.Future[None] | None = None
        self._early_retry: asyncio.Handle | None = None
        self._context = contextvars.copy_context() if CONNECTIONS_IN_SERVER_CONTEXT else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    # ---------------------------------------------------------------------- connection accounting
    # Stock asyncio's names, kept for code written against it: 3.12's signature took no transport (a bare
    # counter) and CPython 3.12's tests still call it that way; 3.13's tests read _waiters.
    def _attach(self, transport: asyncio.BaseTransport | None = None) -> None:
        self._connections.attach(transport)

    def _detach(self, transport: asyncio.BaseTransport | None = None) -> None:
        self._connections.detach(transport)

    @property
    def _waiters(self) -> list[asyncio.Future[None]] | None:
        return self._connections.waiters

    def _connection_accepted(self, conn: socket.socket, addr: Any) -> None:
        loop = self._loop
        extra = {"peername": addr}
        protocol = transport = None
        try:
            protocol = self._protocol_factory()
            if self._ssl_context is not None:
                waiter = loop.create_future()
                transport = loop._wrap_tls(
                    conn, protocol, self._ssl_context, waiter=waiter, server_side=True, server_hostname=None,
                    extra=extra, server=self._connections, ssl_handshake_timeout=self._ssl_handshake_timeout,
                    ssl_shutdown_timeout=self._ssl_shutdown_timeout)
                waiter.add_done_callback(_close_on_failed_handshake(loop, transport, protocol))
            else:
                loop._make_socket_transport(conn, protocol, None, extra=extra, server=self._connections)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if transport is None:
                conn.close()
            else:
                transport.close()
            context = {"message": "Error on transport creation for incoming connection", "exception": exc}
            if protocol is not None:
                context["protocol"] = protocol
            if transport is not None:
                context["transport"] = transport
            loop.call_exception_handler(context)

    # ------------------------------------------------------------------ out of descriptors (see the docstring)
    def _listener_paused(self) -> None:
        self._connections.on_detach = self._connection_ended

    def _connection_ended(self) -> None:
        # Once per loop pass however many connections end in it: each retry costs accept() calls.
        if self._early_retry is None:
            self._early_retry = self._loop.call_soon(self._retry_paused_listeners)

    def _retry_paused_listeners(self) -> None:
        self._early_retry = None
        paused = False
        for listener in self._listeners or ():
            listener.retry_early()
            paused = paused or listener.retry is not None
        if not paused:
            self._connections.on_detach = None

    # ------------------------------------------------------------------------------------ serving
    def _start_serving(self) -> None:
        if self._serving or self._listeners is None:
            return
        self._serving = True
        for listener in self._listeners:
            listener.sock.listen(self._backlog)
            listener.start()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple[Any, ...]:
        if self._listeners is None:
            return ()
        return tuple(wrap_socket(listener.sock) for listener in self._listeners)

    @property
    def _sockets(self) -> list[socket.socket] | None:
        # Stock asyncio's attribute (the raw sockets, None once closed); CPython's tests and some libraries
        # read it.
        if self._listeners is None:
            return None
        return [listener.sock for listener in self._listeners]

    def close(self) -> None:
        listeners, self._listeners = self._listeners, None
        if listeners is None:
            return
        for listener in listeners:
            listener.close()
        self._serving = False
        self._connections.on_detach = None
        if self._early_retry is not None:
            self._early_retry.cancel()
            self._early_retry = None
        fut, self._serving_forever_fut = self._serving_forever_fut, None
        if fut is not None and not fut.done():
            fut.cancel()
        self._connections.close()

    def close_clients(self) -> None:
        for transport in self._connections.live_clients():
            transport.close()

    def abort_clients(self) -> None:
        for transport in self._connections.live_clients():
            transport.abort()  # type: ignore[attr-defined]

    async def start_serving(self) -> None:
        self._start_serving()
        await asyncio.sleep(0)  # stock asyncio yields once here; code may rely on it

    async def serve_forever(self) -> None:
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._listeners is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        fut = self._serving_forever_fut = self._loop.create_future()
        try:
            await fut
        except asyncio.CancelledError:
            try:
                self.close()
                if SERVE_FOREVER_CLOSES_CLIENTS:
                    self.close_clients()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Return once the server is closed and every connection it accepted has ended (either order);
        on 3.11, at once if the server is closed already."""
        waiters = self._connections.waiters
        if waiters is None or (WAIT_CLOSED_RETURNS_WHEN_CLOSED and self._listeners is None):
            return
        waiter = self._loop.create_future()
        waiters.append(waiter)
        await waiter


def _close_on_failed_handshake(loop: Loop, transport: asyncio.BaseTransport, protocol: Any) -> Callable[[Any], None]:
    def done(waiter: asyncio.Future[Any]) -> None:
        if waiter.cancelled():
            transport.close()
            return
        exc = waiter.exception()
        if exc is None:
            return
        transport.close()
        if loop.get_debug():
            loop.call_exception_handler({
                "message": "Error on transport creation for incoming connection",
                "exception": exc, "protocol": protocol, "transport": transport})
    return done
