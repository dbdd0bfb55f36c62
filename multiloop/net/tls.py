"""TLS for the loop: ``ssl=`` on stream connections and servers (through ``_wrap_tls``), and ``start_tls``.

Facts:
- A TLS connection is a plain socket transport carrying a TLS protocol (the state machine) that presents
  a second transport to the application. The state machine is stock asyncio's, reached only through
  :mod:`multiloop.net._sslproto_adapter`; this module decides when and how to build it.
- ``start_tls`` upgrades a transport that is already carrying plain data. Bytes the peer sends after its
  own switch (the ClientHello) must reach the TLS protocol, never the plain one, so reading is paused
  *before* the protocol swap and resumed only after the TLS protocol has seen ``connection_made``.
  Plain bytes the application wrote before the upgrade go out first: we wait for the write buffer to drain
  before the TLS protocol starts writing its handshake (stock asyncio relies on buffer order alone). That
  wait counts against ``ssl_handshake_timeout``: a peer that never reads fails like a handshake that never
  completes (ConnectionAbortedError), and the transport is aborted, since closing would wait for the
  buffer forever.
- Stock error behaviour kept: a non-``SSLContext`` is a TypeError naming what was passed; a transport that
  cannot be upgraded is a TypeError; a handshake failure or timeout closes the transport and raises what
  the running Python raises (``ssl.SSLCertVerificationError``, ``ConnectionAbortedError``...).

Design: ``_wrap_tls`` is the seam the stream code (net-A's ``create_connection``/``create_server``/
``connect_accepted_socket``) calls when ``ssl=`` is given; it only builds layers, the caller validated the
arguments and awaits ``waiter``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

from ..seams import ConnectionTracker, Loop
from . import _sslproto_adapter as adapter


def _check_sslcontext(sslcontext: Any) -> None:
    if not isinstance(sslcontext, ssl.SSLContext):
        raise TypeError(f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}")


def _can_start_tls(transport: Any) -> bool:
    # The marker stock asyncio checks: multiloop's socket transport and the TLS app transport (TLS inside
    # TLS) carry it; datagram, pipe and foreign transports do not.
    return bool(getattr(transport, "_start_tls_compatible", False))


class TlsMixin(Loop):
    """``start_tls`` and the ``_wrap_tls`` seam."""

    def _wrap_tls(
        self,
        rawsock: socket.socket,
        protocol: asyncio.BaseProtocol,
        sslcontext: ssl.SSLContext | None,
        *,
        waiter: asyncio.Future[Any] | None = None,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: dict[str, Any] | None = None,
        server: ConnectionTracker | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """Build TLS over ``rawsock`` for ``protocol`` and return the transport the application uses.

        ``sslcontext`` None (``ssl=True``) means asyncio's default context for the side. ``waiter`` is
        resolved when the handshake has completed (and ``protocol.connection_made`` has been
        called), or fails with the handshake's exception.
        """
        ssl_protocol = adapter.make_ssl_protocol(
            self, protocol, sslcontext, waiter, server_side=server_side, server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout)
        # The plain transport owns the socket (and its fd); its connection_made starts the handshake.
        self._make_socket_transport(rawsock, ssl_protocol, extra=extra, server=server)
        return adapter.app_transport(ssl_protocol)

    async def start_tls(
        self,
        transport: asyncio.BaseTransport,
        protocol: asyncio.BaseProtocol,
        sslcontext: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """Upgrade ``transport`` to TLS; return the new transport ``protocol`` must use from now on."""
        _check_sslcontext(sslcontext)
        if not isinstance(transport, asyncio.BaseTransport) or not _can_start_tls(transport):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")
        if transport.is_closing():
            raise RuntimeError(f"transport {transport!r} is closing; cannot start TLS")

        waiter = self.create_future()
        # Built before touching the transport, so bad timeouts (ValueError) leave it as it was.
        ssl_protocol = adapter.make_ssl_protocol(
            self, protocol, sslcontext, waiter, server_side=server_side, server_hostname=server_hostname,
            call_connection_made=False, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

        transport.pause_reading()  # type: ignore[attr-defined]
        if server_side:
            adapter.move_buffered_stream_data(ssl_protocol, protocol)
        handles: list[asyncio.Handle] = []
        try:
            try:
                async with asyncio.timeout(adapter.handshake_timeout(ssl_protocol)):
                    await self._drain_before_tls(transport)
            except TimeoutError:
                transport.abort()  # type: ignore[attr-defined]
                raise ConnectionAbortedError(
                    f"SSL handshake is taking longer than {adapter.handshake_timeout(ssl_protocol)} seconds: "
                    f"the peer did not read the plain data written before start_tls(); aborting the connection"
                ) from None
            transport.set_protocol(ssl_protocol)
            handles.append(self.call_soon(ssl_protocol.connection_made, transport))
            handles.append(self.call_soon(transport.resume_reading))  # type: ignore[attr-defined]
            await waiter
        except BaseException:
            transport.close()
            for handle in handles:
                handle.cancel()
            raise
        return adapter.app_transport(ssl_protocol)

    async def _drain_before_tls(self, transport: Any) -> None:
        """Wait until plain data written before the upgrade has left the transport's buffer."""
        if not transport.get_write_buffer_size():
            return
        make_waiter = getattr(transport, "_make_empty_waiter", None)
        if make_waiter is None:
            return  # foreign transport: rely on buffer order, as stock asyncio does
        try:
            empty = make_waiter()
        except RuntimeError:
            return  # a sendfile owns the waiter; buffer order still keeps the plain bytes first
        try:
            await empty
        finally:
            reset = getattr(transport, "_reset_empty_waiter", None)
            if reset is not None:
                reset()
