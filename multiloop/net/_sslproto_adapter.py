"""The one place multiloop touches ``asyncio.sslproto`` (a private CPython module).

Facts:
- ``asyncio.sslproto.SSLProtocol`` is the TLS state machine every stock loop uses: a ``BufferedProtocol``
  that sits on a plain stream transport, runs an ``ssl.SSLObject`` over two ``MemoryBIO``s, and presents an
  "app transport" (``_SSLProtocolTransport``) to the user's protocol. It handles the handshake and its
  timeout, close_notify and the shutdown timeout, read/write flow control, ``get_extra_info`` for
  ``sslcontext``/``ssl_object``/``peercert``/``cipher``/``compression`` (delegating everything else, such as
  ``socket``/``peername``, to the raw transport), and the exact exceptions users observe.
- Its constructor signature is the same on 3.11, 3.12 and 3.13:
  ``(loop, app_protocol, sslcontext, waiter, server_side=False, server_hostname=None,
  call_connection_made=True, ssl_handshake_timeout=None, ssl_shutdown_timeout=None)``.
  It creates the app transport eagerly (``_app_transport``) and keeps the effective handshake timeout
  (the default filled in) in ``_ssl_handshake_timeout``.
- What it calls on the raw transport differs by version: 3.11/3.12 call ``abort()`` when aborting,
  3.13 calls ``_force_close(exc)``; all three call ``_force_close(exc)`` on fatal errors and the shutdown
  timeout. So the raw transport must offer the names in :data:`RAW_TRANSPORT_API`.
- On the loop it uses only public methods: ``call_soon``, ``call_later``, ``time``, ``get_debug``,
  ``call_exception_handler``.
- TLS bytes the peer sent before the upgrade may already sit in a server's ``asyncio.StreamReader`` buffer
  (``StreamReaderProtocol._stream_reader._buffer``); ``SSLProtocol`` reads ciphertext from its incoming
  ``MemoryBIO`` (``_incoming``), so stock ``start_tls`` (CPython gh-142352, 3.14) moves them there.

Design: re-implementing TLS over memory BIOs would be ~900 lines that must reproduce stock asyncio's
observable behaviour exactly (the conformance suite checks messages and ordering), so we reuse the stock
state machine, but only here: this module builds it with keyword arguments and hands back the app transport.
``tests/test_net_tls_adapter.py`` checks everything listed above on the running Python and fails with a
message naming the Python version and what changed.
"""

from __future__ import annotations

import asyncio
import sys
from asyncio import sslproto as _sslproto
from typing import Any

#: Parameters of ``SSLProtocol.__init__`` this adapter passes by name.
SSLPROTOCOL_PARAMETERS = (
    "loop",
    "app_protocol",
    "sslcontext",
    "waiter",
    "server_side",
    "server_hostname",
    "call_connection_made",
    "ssl_handshake_timeout",
    "ssl_shutdown_timeout",
)

#: What ``SSLProtocol`` may call on the raw (plain socket) transport under it, on 3.11-3.13.
RAW_TRANSPORT_API = (
    "write",
    "close",
    "abort",
    "_force_close",
    "pause_reading",
    "resume_reading",
    "get_extra_info",
    "is_closing",
)

#: Attributes of the app transport other multiloop modules rely on.
APP_TRANSPORT_API = (
    "_ssl_protocol",
    "_protocol_paused",
    "get_extra_info",
    "set_protocol",
    "get_protocol",
    "is_reading",
    "pause_reading",
    "resume_reading",
    "get_write_buffer_size",
    "write",
    "close",
    "abort",
    "is_closing",
)

SSLProtocol: Any = _sslproto.SSLProtocol  # Any: typeshed's stub is stricter than the runtime signature
APP_TRANSPORT_TYPE: type = _sslproto._SSLProtocolTransport


def make_ssl_protocol(
    loop: asyncio.AbstractEventLoop,
    app_protocol: asyncio.BaseProtocol,
    sslcontext: Any,
    waiter: asyncio.Future[Any] | None,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    call_connection_made: bool = True,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> asyncio.BufferedProtocol:
    """The TLS protocol to put under ``app_protocol`` (it validates the two timeouts: ValueError if <= 0)."""
    return SSLProtocol(
        loop=loop,
        app_protocol=app_protocol,
        sslcontext=sslcontext,
        waiter=waiter,
        server_side=server_side,
        server_hostname=server_hostname,
        call_connection_made=call_connection_made,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )


def app_transport(ssl_protocol: Any) -> asyncio.Transport:
    """The transport the application sees (created by the constructor, so never None before use)."""
    transport = ssl_protocol._app_transport
    if transport is None:  # pragma: no cover - guarded by the adapter test
        raise RuntimeError(
            f"asyncio.sslproto on Python {sys.version.split()[0]} did not create the app "
            f"transport in SSLProtocol.__init__; multiloop's TLS adapter needs updating"
        )
    return transport


def handshake_timeout(ssl_protocol: Any) -> float:
    """The handshake timeout in force (the default filled in when the caller passed None)."""
    return float(ssl_protocol._ssl_handshake_timeout)


def is_app_transport(transport: Any) -> bool:
    """True for a TLS app transport built by this adapter (sendfile must use the fallback for it)."""
    return isinstance(transport, APP_TRANSPORT_TYPE)


def move_buffered_stream_data(ssl_protocol: Any, app_protocol: Any) -> None:
    """Hand ciphertext a server's StreamReader buffered before ``start_tls`` to the TLS protocol (stock
    gh-142352: otherwise the handshake waits for a ClientHello that already arrived)."""
    if not isinstance(app_protocol, asyncio.StreamReaderProtocol):
        return
    reader = getattr(app_protocol, "_stream_reader", None)
    buffer = getattr(reader, "_buffer", None)
    if buffer:
        ssl_protocol._incoming.write(buffer)
        buffer.clear()
