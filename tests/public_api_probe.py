"""Uses every public multiloop API once, for ``python -W error public_api_probe.py <backend>``
(run by tests/test_no_warnings.py): any warning (DeprecationWarning first of all, ResourceWarning too) is an
error, and anything printed on stderr fails the test. Prints ``ok <backend>`` at the end."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile

import multiloop
from multiloop import EventLoopPolicy  # built on first use (3.14+ deprecates asyncio's policy base class)
from multiloop.reliability.certificates import self_signed_contexts

BACKEND = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="multiloop-probe-")


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
    return self_signed_contexts(TMP, "IP:127.0.0.1")


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def streams(tls: tuple[ssl.SSLContext, ssl.SSLContext] | None) -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"tcp\n")
        assert await r.readline() == b"tcp\n"
        w.close()
        await w.wait_closed()
    path = os.path.join(TMP, "s.sock")
    server = await asyncio.start_unix_server(echo, path)
    async with server:
        r, w = await asyncio.open_unix_connection(path)
        w.write(b"unix\n")
        assert await r.readline() == b"unix\n"
        w.close()
        await w.wait_closed()
    if tls is not None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=tls[0])
        async with server:
            port = server.sockets[0].getsockname()[1]
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=tls[1])
            w.write(b"tls\n")
            assert await r.readline() == b"tls\n"
            w.close()
            await w.wait_closed()


async def sockets_and_datagrams() -> None:
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    with a, b:
        await loop.sock_sendall(a, b"x")
        assert await loop.sock_recv(b, 1) == b"x"
        with open(os.path.join(TMP, "f"), "wb+") as f:
            f.write(b"sendfile")
            f.seek(0)
            await loop.sock_sendfile(a, f)
        got = b""
        while len(got) < 8:
            got += await loop.sock_recv(b, 8)
        assert got == b"sendfile"

    received = loop.create_future()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            received.set_result(data)

    srv, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
    cli, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                 remote_addr=srv.get_extra_info("sockname"))
    cli.sendto(b"udp")
    assert await received == b"udp"
    cli.close()
    srv.close()
    await loop.getaddrinfo("127.0.0.1", 80)
    await loop.getaddrinfo("localhost", 80)


async def unix_features() -> None:
    loop = asyncio.get_running_loop()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "print('child')",
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out.strip() == b"child" and proc.returncode == 0
    got = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, got.set_result, "signal")
    os.kill(os.getpid(), signal.SIGUSR1)
    assert await got == "signal"
    loop.remove_signal_handler(signal.SIGUSR1)
    rfd, wfd = os.pipe()
    reader = asyncio.StreamReader()
    rt, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(rfd, "rb"))
    wt, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(wfd, "wb"))
    wt.write(b"pipe")
    wt.close()
    assert await reader.read() == b"pipe"
    rt.close()


async def core() -> None:
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, sum, (1, 2)) == 3
    fut = loop.create_future()
    loop.call_later(0.001, fut.set_result, "timer")
    assert await fut == "timer"
    fut = loop.create_future()
    loop.call_soon_threadsafe(fut.set_result, "threadsafe")
    assert await fut == "threadsafe"
    if sys.version_info >= (3, 14):
        task = loop.create_task(asyncio.sleep(0), eager_start=True)
        await task
        assert asyncio.format_call_graph(asyncio.current_task())

    async def agen():
        yield 1

    async for _ in agen():
        break
    loop.stats()


async def main() -> str:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, multiloop.EventLoop) and loop.backend == BACKEND
    await core()
    await streams(tls_contexts())
    await sockets_and_datagrams()
    await unix_features()
    return loop.backend


def entry_points() -> None:
    assert any(b.name == BACKEND and b.available for b in multiloop.backends())
    multiloop.default_backend()
    assert multiloop.run(main(), backend=BACKEND) == BACKEND
    with asyncio.Runner(loop_factory=multiloop.loop_factory(BACKEND)) as runner:
        assert runner.run(main()) == BACKEND
    if sys.version_info >= (3, 12):
        assert asyncio.run(main(), loop_factory=multiloop.loop_factory(BACKEND)) == BACKEND
    loop = multiloop.new_loop(BACKEND)
    try:
        assert loop.run_until_complete(main()) == BACKEND
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    if sys.version_info < (3, 16):
        policy_loop = EventLoopPolicy(BACKEND).new_event_loop()
        assert policy_loop.backend == BACKEND
        policy_loop.close()


if __name__ == "__main__":
    try:
        entry_points()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print("ok", BACKEND)
