"""Adapter: the socket-like object ``get_extra_info('socket')`` and ``Server.sockets`` hand out, and the
socket entries of a socket transport's extra info.

Facts: stock asyncio never gives users the transport's real socket, but a wrapper,
``asyncio.trsock.TransportSocket``, that forwards harmless calls (fileno, getsockname, getsockopt, ...) and has
no close/send/recv, so user code cannot break the transport behind its back. CPython's own test suite checks
``isinstance(server.sockets[0], asyncio.trsock.TransportSocket)``, and libraries (aiohttp) only use the
forwarding methods. ``asyncio.trsock`` is a private module, so this is the one place that touches it; the
test ``tests/test_net_socketview.py`` fails loudly if a Python release changes the parts we rely on (the
one-argument constructor, the ``_sock`` attribute, the forwarding methods, no ``close``).
"""

from __future__ import annotations

import socket
from asyncio import trsock as _trsock
from typing import Any

TransportSocket = _trsock.TransportSocket


def wrap_socket(sock: socket.socket) -> TransportSocket:
    """A user-safe view of ``sock``."""
    return TransportSocket(sock)


def socket_extra(sock: socket.socket, extra: dict[str, Any] | None) -> dict[str, Any]:
    """What a socket transport's ``get_extra_info`` answers: ``extra`` plus ``socket`` (the view above),
    ``sockname`` and ``peername`` (None where the kernel cannot say; a ``peername`` given is kept: the
    accept loop knows it already)."""
    info = dict(extra) if extra else {}
    info["socket"] = wrap_socket(sock)
    try:
        info["sockname"] = sock.getsockname()
    except OSError:
        info["sockname"] = None
    if "peername" not in info:
        try:
            info["peername"] = sock.getpeername()
        except OSError:
            info["peername"] = None
    return info
