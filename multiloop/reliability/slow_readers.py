"""Slow readers: a server streams to clients that read slowly; its memory stays bounded because the
transport tells the protocol to stop (``pause_writing``) and to go on (``resume_writing``).

Facts that shape it:
- ``write`` never blocks: what the kernel does not take is buffered in the transport. Flow control is the
  transport calling ``pause_writing()`` when its buffer goes above the high-water mark and
  ``resume_writing()`` once it drains to the low one; a producer that honours them buffers at most
  ``high + one chunk`` per connection, however slow the reader. A transport that forgot to call them
  would buffer the whole stream.
- Loopback TCP buffers megabytes in the kernel; a small ``SO_SNDBUF`` on the server's socket and
  ``SO_RCVBUF`` on the reader make the kernel's share small, so the transport's buffer is what fills.
- A fast reader is served alongside: slow readers must not hold it up (its figure is reported).

Promises checked: every reader gets exactly the stream (length and BLAKE2b digest), every slow connection
was paused at least once and resumed as often as it was paused (or once less, when the end came while
paused), and no transport buffered more than ``high + chunk``. Figures: bytes verified, pauses, peak
buffer, RSS growth.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from typing import Any

from .harness import Context, latency_figures, rss_bytes

SIZES = {
    "ci": {"readers": 12, "stream": 2**20, "read": 8192, "read_pause": 0.002, "timeout": 90},
    "soak": {"readers": 200, "stream": 4 * 2**20, "read": 16384, "read_pause": 0.001, "timeout": 900},
}

HIGH_WATER = 64 * 1024
CHUNK = 16 * 1024
_BLOCK_SIZE = 65521  # prime: a loss of whole blocks is unlikely to line up


def _stream(block: bytes, offset: int, size: int) -> bytes:
    start = offset % len(block)
    out = block[start:start + size]
    while len(out) < size:
        out += block[:size - len(out)]
    return out


def _expected_digest(block: bytes, total: int) -> bytes:
    digest = hashlib.blake2b()
    for offset in range(0, total, CHUNK):
        digest.update(_stream(block, offset, min(CHUNK, total - offset)))
    return digest.digest()


class _Producer(asyncio.Protocol):
    def __init__(self, block: bytes, total: int, stats: dict[str, int], small_buffer: bool) -> None:
        self.block, self.total, self.stats, self.small_buffer = block, total, stats, small_buffer
        self.sent = 0
        self.paused = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.small_buffer:
            # Small kernel buffers on both ends: the transport's buffer is what fills (loopback takes MBs).
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        transport.set_write_buffer_limits(high=HIGH_WATER)
        self.produce()

    def produce(self) -> None:
        transport = self.transport
        while not self.paused and self.sent < self.total and not transport.is_closing():
            size = min(CHUNK, self.total - self.sent)
            transport.write(_stream(self.block, self.sent, size))
            self.sent += size
            buffered = transport.get_write_buffer_size()
            if buffered > self.stats["peak_buffer"]:
                self.stats["peak_buffer"] = buffered
        if self.sent >= self.total and not transport.is_closing():
            transport.close()  # flushes what is buffered first

    def pause_writing(self) -> None:
        self.paused = True
        self.stats["pauses"] += 1

    def resume_writing(self) -> None:
        self.paused = False
        self.stats["resumes"] += 1
        self.produce()


async def _slow_reader(ctx: Context, addr: tuple[str, int], block: bytes, total: int) -> None:
    loop, p = ctx.loop, ctx.params
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, addr)
        digest = hashlib.blake2b()
        n = 0
        while True:
            data = await loop.sock_recv(sock, p["read"])
            if not data:
                break
            n += len(data)
            digest.update(data)
            await asyncio.sleep(p["read_pause"])
    finally:
        sock.close()
    if ctx.check(n == total and digest.digest() == _expected_digest(block, total),
                 f"slow reader got {n} of {total} bytes" + (" (checksum differs)" if n == total else "")):
        ctx.add("bytes_verified", n)


async def _fast_reader(ctx: Context, addr: tuple[str, int], block: bytes, total: int) -> float:
    start = time.monotonic()
    reader, writer = await asyncio.open_connection(*addr)
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    if ctx.check(len(data) == total and hashlib.blake2b(data).digest() == _expected_digest(block, total),
                 f"fast reader got {len(data)} of {total} bytes"):
        ctx.add("bytes_verified", len(data))
    return time.monotonic() - start


async def main(ctx: Context) -> None:
    loop, p = ctx.loop, ctx.params
    block = ctx.rng.randbytes(_BLOCK_SIZE)
    total = p["stream"]
    slow = {"peak_buffer": 0, "pauses": 0, "resumes": 0}
    fast = {"peak_buffer": 0, "pauses": 0, "resumes": 0}
    slow_server = await loop.create_server(lambda: _Producer(block, total, slow, True), "127.0.0.1", 0)
    fast_server = await loop.create_server(lambda: _Producer(block, total, fast, False), "127.0.0.1", 0)
    slow_addr = slow_server.sockets[0].getsockname()[:2]
    fast_addr = fast_server.sockets[0].getsockname()[:2]
    ctx.figure("bytes_verified", 0)
    rss0 = rss_bytes()
    try:
        readers = [loop.create_task(_slow_reader(ctx, slow_addr, block, total)) for _ in range(p["readers"])]
        await asyncio.sleep(0)
        fast_seconds = [await _fast_reader(ctx, fast_addr, block, total) for _ in range(3)]
        for exc in await asyncio.gather(*readers, return_exceptions=True):
            if isinstance(exc, BaseException):
                ctx.check(False, f"slow reader failed: {type(exc).__name__}: {exc}")
    finally:
        slow_server.close()
        fast_server.close()
        await slow_server.wait_closed()
        await fast_server.wait_closed()
    bound = HIGH_WATER + CHUNK
    ctx.check(slow["peak_buffer"] <= bound,
              f"a transport buffered {slow['peak_buffer']} bytes for a slow reader (bound {bound}): "
              f"pause_writing() came late or not at all")
    ctx.check(slow["pauses"] >= p["readers"], f"only {slow['pauses']} pause_writing() calls for "
                                              f"{p['readers']} slow readers")
    ctx.check(slow["pauses"] - p["readers"] <= slow["resumes"] <= slow["pauses"],
              f"{slow['pauses']} pause_writing() but {slow['resumes']} resume_writing() calls")
    ctx.figure("readers", p["readers"])
    ctx.figure("pauses", slow["pauses"])
    ctx.figure("peak_buffer_kb", round(slow["peak_buffer"] / 1024, 1))
    ctx.figure("rss_growth_mb", round((rss_bytes() - rss0) / 2**20, 1))
    ctx.result.figures.update(latency_figures("fast_reader", fast_seconds))
