"""Real asyncio code from a trio program: streams, subprocesses, and aiohttp (a library no one here wrote).

A feature of the core that is not implemented yet (NotImplementedError) skips its test with that reason,
so the test turns on when the feature lands."""

from __future__ import annotations

import asyncio
import sys

import pytest
import trio
from multiloop_trio import aio_as_trio, open_loop, trio_as_aio


def run_or_skip(trio_main):
    try:
        return trio.run(trio_main)
    except NotImplementedError as exc:
        pytest.skip(f"not implemented in multiloop yet: {exc}")


async def echo_streams(payloads):
    async def handle(reader, writer):
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        replies = []
        for p in payloads:
            writer.write(p)
            await writer.drain()
            replies.append(await reader.readexactly(len(p)))
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        return replies


def test_asyncio_streams_server_and_client_from_trio():
    payloads = [b"hello", b"x" * 200_000, b"bye"]

    async def main():
        async with open_loop():
            return await aio_as_trio(echo_streams)(payloads)

    assert run_or_skip(main) == [p.upper() for p in payloads]


def test_asyncio_client_talks_to_a_trio_server():
    async def trio_handler(stream):
        async with stream:
            data = await stream.receive_some(100)
            await stream.send_all(data[::-1])

    async def aio_client(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"abc")
        reply = await reader.read(100)
        writer.close()
        await writer.wait_closed()
        return reply

    async def main():
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, trio_handler, 0)
            port = listeners[0].socket.getsockname()[1]
            async with open_loop():
                reply = await aio_as_trio(aio_client)(port)
            nursery.cancel_scope.cancel()
        return reply

    assert run_or_skip(main) == b"cba"


def test_create_subprocess_exec_from_trio():
    async def child():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate(b"from trio via asyncio")
        return proc.returncode, out

    async def main():
        async with open_loop():
            return await aio_as_trio(child)()

    assert run_or_skip(main) == (0, b"FROM TRIO VIA ASYNCIO")


def test_trio_cancellation_kills_nothing_but_cancels_subprocess_wait():
    async def slow_child():
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
        try:
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return proc.returncode

    async def main():
        async with open_loop():
            with trio.move_on_after(0.2) as scope:
                await aio_as_trio(slow_child)()
            return scope.cancelled_caught

    assert run_or_skip(main) is True


def test_aiohttp_server_and_client_from_trio():
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp import web

    async def hello(request):
        name = request.match_info["name"]
        # The handler calls back into trio for part of its work.
        await trio_as_aio(trio.sleep)(0)
        return web.json_response({"hello": name})

    async def serve_and_fetch():
        app = web.Application()
        app.router.add_get("/hello/{name}", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            async with aiohttp.ClientSession() as session:
                results = []
                for name in ("trio", "asyncio"):
                    async with session.get(f"http://127.0.0.1:{port}/hello/{name}") as resp:
                        results.append((resp.status, await resp.json()))
                return results
        finally:
            await runner.cleanup()

    async def main():
        async with open_loop():
            return await aio_as_trio(serve_and_fetch)()

    assert run_or_skip(main) == [(200, {"hello": "trio"}), (200, {"hello": "asyncio"})]


def test_streams_on_the_trio_backend_via_multiloop_run():
    import multiloop

    assert multiloop.run(echo_streams([b"one", b"two"]), backend="trio") == [b"ONE", b"TWO"]
