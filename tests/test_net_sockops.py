"""The ``sock_*`` coroutines on every backend: each operation, the blocking-socket refusal, and that waiting
operations unregister when they finish or are cancelled."""

from __future__ import annotations

import asyncio
import socket

import pytest


def registered(loop, sock) -> bool:
    return sock.fileno() in loop._fdtable


def test_sock_recv_and_sendall(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        reader = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        assert registered(loop, a)  # nothing queued: it waits
        await loop.sock_sendall(b, b"hello")
        assert await reader == b"hello"
        assert not registered(loop, a)

    run(main())


def test_sock_recv_returns_at_once_when_data_is_queued(loop, run, socketpair):
    a, b = socketpair()
    b.send(b"ready")

    async def main():
        assert await loop.sock_recv(a, 100) == b"ready"
        assert not registered(loop, a)  # tried first, never registered

    run(main())


def test_sock_recv_into(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        buf = bytearray(10)
        reader = loop.create_task(loop.sock_recv_into(a, buf))
        await asyncio.sleep(0)
        b.send(b"abc")
        assert await reader == 3
        assert buf[:3] == b"abc"

    run(main())


def test_sock_sendall_larger_than_the_socket_buffer(loop, run, socketpair):
    a, b = socketpair()
    payload = bytes(range(256)) * 40_000

    async def main():
        async def drain():
            out = bytearray()
            while len(out) < len(payload):
                out += await loop.sock_recv(b, 1 << 20)
            return bytes(out)

        reader = loop.create_task(drain())
        await loop.sock_sendall(a, payload)
        assert await reader == payload
        assert not registered(loop, a)

    run(main())


def test_sock_recvfrom_and_sendto(loop, run):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            rx.bind(("127.0.0.1", 0))
            rx.setblocking(False)
            tx.setblocking(False)
            waiting = loop.create_task(loop.sock_recvfrom(rx, 100))
            await asyncio.sleep(0)
            assert await loop.sock_sendto(tx, b"dgram", rx.getsockname()) == 5
            data, addr = await waiting
            assert data == b"dgram" and addr[1] == tx.getsockname()[1]
            buf = bytearray(100)
            await loop.sock_sendto(tx, b"into", rx.getsockname())
            n, addr = await loop.sock_recvfrom_into(rx, buf)
            assert buf[:n] == b"into"
            await loop.sock_sendto(tx, b"limited", rx.getsockname())
            n, _ = await loop.sock_recvfrom_into(rx, buf, 3)
            assert n == 3

    run(main())


def test_sock_connect_and_accept(loop, run):
    async def main():
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        accepting = loop.create_task(loop.sock_accept(listener))
        await asyncio.sleep(0)
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, listener.getsockname())
        conn, addr = await accepting
        assert addr == client.getsockname()
        assert conn.gettimeout() == 0  # accepted sockets come back non-blocking
        await loop.sock_sendall(conn, b"x")
        assert await loop.sock_recv(client, 1) == b"x"
        for s in (conn, client, listener):
            s.close()

    run(main())


def test_sock_connect_resolves_names(loop, run):
    async def main():
        listener = socket.create_server(("127.0.0.1", 0))
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, ("localhost", listener.getsockname()[1]))
        assert client.getpeername()[1] == listener.getsockname()[1]
        client.close()
        listener.close()

    run(main())


def test_sock_connect_refused(loop, run):
    async def main():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        addr = s.getsockname()
        s.close()
        client = socket.socket()
        client.setblocking(False)
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(client, addr)
        assert not registered(loop, client)
        client.close()

    run(main())


@pytest.mark.parametrize("op", ["sock_recv", "sock_recv_into", "sock_recvfrom", "sock_recvfrom_into",
                                "sock_sendall", "sock_sendto", "sock_connect", "sock_accept"])
def test_blocking_sockets_are_refused(loop, run, op):
    args = {"sock_recv": (1,), "sock_recv_into": (bytearray(1),), "sock_recvfrom": (1,),
            "sock_recvfrom_into": (bytearray(1),), "sock_sendall": (b"x",), "sock_sendto": (b"x", ("127.0.0.1", 9)),
            "sock_connect": (("127.0.0.1", 9),), "sock_accept": ()}[op]

    async def main():
        with socket.socket() as s:
            with pytest.raises(ValueError, match="the socket must be non-blocking"):
                await getattr(loop, op)(s, *args)

    run(main())


def test_cancelling_a_waiting_recv_unregisters(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        reader = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        assert registered(loop, a)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        assert not registered(loop, a)
        b.send(b"later")
        assert await loop.sock_recv(a, 100) == b"later"  # nothing was consumed by the cancelled one

    run(main())


def test_cancelling_a_waiting_accept_unregisters(loop, run):
    async def main():
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        accepting = loop.create_task(loop.sock_accept(listener))
        await asyncio.sleep(0)
        accepting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await accepting
        assert not registered(loop, listener)
        listener.close()

    run(main())


def test_sock_ops_refuse_an_fd_owned_by_a_transport(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
        with pytest.raises(RuntimeError, match="is used by transport"):
            await loop.sock_recv(a, 1)
        transport.close()
        await asyncio.sleep(0)

    run(main())
