"""``connect_read_pipe`` / ``connect_write_pipe``: wrap an existing file object in a pipe transport.

The transports live in :mod:`multiloop.unix.pipe_transports`; this mixin only does asyncio's handshake
(create the protocol, build the transport, wait until ``connection_made`` has run, close on failure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ..seams import Loop
from ..transport_base import wait_made
from .pipe_transports import ReadPipeTransport, WritePipeTransport

logger = logging.getLogger("asyncio")

_ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)
_TransportT = TypeVar("_TransportT", bound=asyncio.BaseTransport)


class PipesMixin(Loop):
    """Pipe transports for pipes, FIFOs, sockets, ttys/ptys and (for reading) regular files."""

    async def connect_read_pipe(self, protocol_factory: Callable[[], _ProtocolT],
                                pipe: Any) -> tuple[asyncio.ReadTransport, _ProtocolT]:
        return await self._connect_pipe(self._make_read_pipe_transport, protocol_factory, pipe, "Read")

    async def connect_write_pipe(self, protocol_factory: Callable[[], _ProtocolT],
                                 pipe: Any) -> tuple[asyncio.WriteTransport, _ProtocolT]:
        return await self._connect_pipe(self._make_write_pipe_transport, protocol_factory, pipe, "Write")

    async def _connect_pipe(self, make: Callable[[Any, _ProtocolT, asyncio.Future[Any]], _TransportT],
                            protocol_factory: Callable[[], _ProtocolT], pipe: Any,
                            kind: str) -> tuple[_TransportT, _ProtocolT]:
        self._check_closed()
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = make(pipe, protocol, waiter)
        await wait_made(transport, waiter)
        if self.get_debug():
            logger.debug("%s pipe %r connected: (%r, %r)", kind, pipe.fileno(), transport, protocol)
        return transport, protocol

    # Names kept from asyncio's BaseEventLoop: CPython's tests and some libraries build transports through
    # them directly.
    def _make_read_pipe_transport(self, pipe: Any, protocol: asyncio.BaseProtocol,
                                  waiter: asyncio.Future[Any] | None = None,
                                  extra: dict[str, Any] | None = None) -> ReadPipeTransport:
        return ReadPipeTransport(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(self, pipe: Any, protocol: asyncio.BaseProtocol,
                                   waiter: asyncio.Future[Any] | None = None,
                                   extra: dict[str, Any] | None = None) -> WritePipeTransport:
        return WritePipeTransport(self, pipe, protocol, waiter, extra)
