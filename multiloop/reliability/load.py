"""Load: many concurrent TCP and Unix connections echo random-sized messages, half-close, and check every
byte that comes back.

Facts that shape it:
- A half-close (``write_eof``: ``shutdown(SHUT_WR)``) is how a client says "that was all" and keeps reading;
  the server answers it with a half-close of its own once its echo is flushed. A byte lost, duplicated or
  reordered anywhere (short writes, the shared read buffer, ``sendmsg`` of several chunks, flow control)
  changes the checksum at the end.
- An echo server must stop reading while its peer is not reading (``pause_writing`` -> ``pause_reading``),
  or its write buffer grows without bound; both servers here do, and the figures show the peak buffer.
- Message sizes are log-uniform from 1 byte to ``max_message``: most are small, some span many reads.
- The TCP server's protocol is an ``asyncio.Protocol`` (bytes per read), the Unix one an
  ``asyncio.BufferedProtocol`` (reads into the protocol's buffer): both transport read paths are loaded.

Promises checked: every connection gets back exactly what it sent (length and BLAKE2b digest), sees the
server's EOF, and nothing is reported to the exception handler. Figures: connections, bytes verified,
connection latency (connect to verified) p50/p99, throughput, peak write buffer.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import shutil
import tempfile
import time
from typing import Any

from .harness import Context, latency_figures

#: Capped on an FD_SETSIZE backend (see harness.LIMITED_FDS_CAP).
FD_HUNGRY = ("concurrency",)

SIZES = {
    "ci": {"connections": 600, "concurrency": 300, "messages": 6, "max_message": 256 * 1024, "timeout": 90},
    "soak": {"connections": 5000, "concurrency": 5000, "messages": 8, "max_message": 256 * 1024,
             "timeout": 900},
}


class _EchoBase:
    """Echo with back-pressure and a half-close answered by a half-close."""

    peak_buffer = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def _echo(self, data: Any) -> None:
        transport = self.transport
        transport.write(data)
        size = transport.get_write_buffer_size()
        if size > _EchoBase.peak_buffer:
            _EchoBase.peak_buffer = size

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def eof_received(self) -> bool:
        # Half-close in answer (the shutdown waits for the echo to be flushed), then close: a peer at EOF
        # is not read any more, so the client's own close would go unnoticed.
        self.transport.write_eof()
        self.transport.close()
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None


class _Echo(_EchoBase, asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        self._echo(data)


class _BufferedEcho(_EchoBase, asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buffer = bytearray(64 * 1024)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._echo(bytes(self.buffer[:nbytes]))


def _message_sizes(ctx: Context) -> list[int]:
    rng, p = ctx.rng, ctx.params
    top = math.log(p["max_message"])
    return [max(1, int(math.exp(rng.uniform(0, top)))) for _ in range(rng.randint(1, p["messages"]))]


async def _client(ctx: Context, connect: Any, latencies: list[float]) -> None:
    sizes = _message_sizes(ctx)
    seed = ctx.rng.randbytes(64)
    start = time.monotonic()
    reader, writer = await connect()
    sent = hashlib.blake2b()
    total = 0

    async def send() -> None:
        nonlocal total
        for i, size in enumerate(sizes):
            chunk = (seed * (size // len(seed) + 1))[:size]
            chunk = bytes([i & 0xFF]) + chunk[1:]  # messages differ, so reordering shows
            sent.update(chunk)
            total += size
            writer.write(chunk)
            await writer.drain()
        writer.write_eof()

    async def receive() -> tuple[int, bytes]:
        got = hashlib.blake2b()
        n = 0
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                return n, got.digest()
            n += len(data)
            got.update(data)

    try:
        _, (n, digest) = await asyncio.gather(send(), receive())
    finally:
        writer.close()
    if ctx.check(n == total and digest == sent.digest(),
                 f"echo mismatch: sent {total} bytes, got {n} back"
                 + ("" if n != total else " with a different checksum")):
        ctx.add("bytes_verified", total)
        ctx.add("connections_verified", 1)
    latencies.append(time.monotonic() - start)
    await writer.wait_closed()


async def main(ctx: Context) -> None:
    loop, p = ctx.loop, ctx.params
    _EchoBase.peak_buffer = 0
    tmp = tempfile.mkdtemp(prefix="multiloop-load-")
    path = os.path.join(tmp, "echo.sock")
    tcp = await loop.create_server(_Echo, "127.0.0.1", 0, backlog=p["concurrency"])
    unix = await loop.create_unix_server(_BufferedEcho, path, backlog=p["concurrency"])
    host, port = tcp.sockets[0].getsockname()[:2]
    latencies: list[float] = []
    limit = asyncio.Semaphore(p["concurrency"])
    ctx.figure("bytes_verified", 0)
    ctx.figure("connections_verified", 0)

    async def one(i: int) -> None:
        async with limit:
            if i % 2:
                await _client(ctx, lambda: asyncio.open_unix_connection(path), latencies)
            else:
                await _client(ctx, lambda: asyncio.open_connection(host, port), latencies)

    start = time.monotonic()
    try:
        results = await asyncio.gather(*(one(i) for i in range(p["connections"])), return_exceptions=True)
        for exc in results:
            if isinstance(exc, BaseException):
                ctx.check(False, f"client failed: {type(exc).__name__}: {exc}")
                break
    finally:
        tcp.close()
        unix.close()
        await tcp.wait_closed()
        await unix.wait_closed()
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - start
    ctx.check(ctx.result.figures["connections_verified"] == p["connections"],
              f"only {ctx.result.figures['connections_verified']} of {p['connections']} connections verified")
    ctx.figure("connections", p["connections"])
    ctx.figure("throughput_mb_s", round(ctx.result.figures["bytes_verified"] * 2 / elapsed / 2**20, 1))
    ctx.figure("peak_server_write_buffer_kb", round(_EchoBase.peak_buffer / 1024, 1))
    ctx.result.figures.update(latency_figures("connection", latencies))
