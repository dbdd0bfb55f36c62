"""Adapter: the socket-like object ``get_extra_info('socket')`` and ``Server.sockets`` hand out.

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

TransportSocket = _trsock.TransportSocket


def wrap_socket(sock: socket.socket) -> TransportSocket:
    """A user-safe view of ``sock``."""
    return TransportSocket(sock)
