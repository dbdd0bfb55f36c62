"""Networking on top of the core's fd registration: Server, transports, sock_* methods, sendfile, TLS,
datagrams. Each concern is a mixin in its own module; NetworkMixin composes them."""

from __future__ import annotations

from .datagram import DatagramMixin
from .sendfile import SendfileMixin
from .sockops import SockOpsMixin
from .streams import StreamsMixin
from .tls import TlsMixin
from .unix_streams import UnixStreamsMixin


class NetworkMixin(StreamsMixin, UnixStreamsMixin, TlsMixin, SendfileMixin, DatagramMixin, SockOpsMixin):
    """All networking methods of ``asyncio.AbstractEventLoop``."""
