"""Networking on top of the core's fd registration: Server, transports, sock_* methods, sendfile, TLS."""

from __future__ import annotations

import asyncio


class NetworkMixin(asyncio.AbstractEventLoop):
    """Placeholder until the networking modules land; AbstractEventLoop raises NotImplementedError."""
