"""asyncio's high-level streams (start_server / open_connection) run unchanged on multiloop, every backend."""

from __future__ import annotations

import asyncio

import pytest


async def upper_line(reader, writer):
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_start_server_and_open_connection(loop, run, aclose):
    async def main():
        server = await asyncio.start_server(upper_line, "127.0.0.1", 0)
        host, port = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(host, port)
        for word in (b"one\n", b"two\n"):
            writer.write(word)
            assert await reader.readline() == word.upper()
        assert writer.can_write_eof()
        writer.write_eof()
        assert await reader.read() == b""
        await aclose(writer, server)

    run(main())


def test_streams_move_a_large_payload_with_drain(loop, run, aclose):
    payload = b"0123456789abcdef" * 500_000  # 8 MB: flow control pauses and resumes the writer

    async def sink(reader, writer):
        total = 0
        while chunk := await reader.read(1 << 20):
            total += len(chunk)
        writer.write(str(total).encode())
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(sink, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        for i in range(0, len(payload), 1 << 20):
            writer.write(payload[i:i + (1 << 20)])
            await writer.drain()
        writer.write_eof()
        assert int(await reader.read()) == len(payload)
        await aclose(writer, server)

    run(main())


def test_serve_forever_with_async_with(loop, run):
    async def main():
        server = await asyncio.start_server(upper_line, "127.0.0.1", 0)
        async with server:
            serving = asyncio.ensure_future(server.serve_forever())
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            writer.write(b"x\n")
            assert await reader.readline() == b"X\n"
            writer.close()
            await writer.wait_closed()
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
        assert not server.is_serving()

    run(main())


def test_open_connection_refused(loop, run):
    async def main():
        server = await asyncio.start_server(upper_line, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)

    run(main())
