"""The one place multiloop reuses a private asyncio module (``asyncio.trsock``): fail loudly if a Python release
changes what :mod:`multiloop.net.socketview` relies on."""

from __future__ import annotations

import asyncio.trsock
import socket

from multiloop.net.socketview import TransportSocket, wrap_socket


def test_adapter_uses_asyncios_transport_socket():
    # CPython's own tests check isinstance(server.sockets[0], asyncio.trsock.TransportSocket).
    assert TransportSocket is asyncio.trsock.TransportSocket


def test_wrapper_forwards_harmless_calls_and_hides_destructive_ones():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        view = wrap_socket(sock)
        assert view._sock is sock
        assert view.fileno() == sock.fileno()
        assert (view.family, view.type, view.proto) == (sock.family, sock.type, sock.proto)
        assert view.getsockname() == sock.getsockname()
        assert view.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
        for destructive in ("close", "send", "recv", "detach"):
            assert not hasattr(view, destructive), destructive
        assert "TransportSocket" in repr(view)
