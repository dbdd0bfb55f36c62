"""``connect_read_pipe`` / ``connect_write_pipe``: wrap an existing file object in a pipe transport.

The transports live in :mod:`multiloop.unix.pipe_transports`; this mixin only does asyncio's handshake
(create the protocol, build the transport, wait until ``connection_made`` has run, close on failure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .pipe_transports import ReadPipeTransport, WritePipeTransport

logger = logging.getLogger("asyncio")


class PipesMixin(asyncio.AbstractEventLoop):
    """Pipe transports for pipes, FIFOs, sockets, ttys/ptys and (for reading) regular files."""

    async def connect_read_pipe(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                                pipe: Any) -> tuple[asyncio.ReadTransport, asyncio.BaseProtocol]:
        self._check_closed()
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = self._make_read_pipe_transport(pipe, protocol, waiter)
        await self._finish_pipe_handshake(transport, waiter)
        if self.get_debug():
            logger.debug("Read pipe %r connected: (%r, %r)", pipe.fileno(), transport, protocol)
        return transport, protocol

    async def connect_write_pipe(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                                 pipe: Any) -> tuple[asyncio.WriteTransport, asyncio.BaseProtocol]:
        self._check_closed()
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = self._make_write_pipe_transport(pipe, protocol, waiter)
        await self._finish_pipe_handshake(transport, waiter)
        if self.get_debug():
            logger.debug("Write pipe %r connected: (%r, %r)", pipe.fileno(), transport, protocol)
        return transport, protocol

    @staticmethod
    async def _finish_pipe_handshake(transport: asyncio.BaseTransport, waiter: asyncio.Future[Any]) -> None:
        try:
            await waiter
        except BaseException:
            transport.close()
            raise

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
