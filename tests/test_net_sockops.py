"""The ``sock_*`` coroutines on every backend: each operation, the blocking-socket refusal, and that waiting
operations unregister when they finish or are cancelled."""

from __future__ import annotations

import asyncio
import socket
import struct

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


# ---------------------------------------------------------------------------- when registrations go
# The readiness callback removes a finished wait's registration before the woken task runs, so that the task
# may close the socket and reuse its fd number. These check what must hold around that.


def test_recv_then_close_leaves_the_epoll_set_alone(loop, run, socketpair, backend):
    if backend != "epoll":
        pytest.skip("counts the epoll backend's rebuilds")

    async def main():
        for _ in range(10):
            a, b = socketpair()
            loop.call_soon(b.send, b"x")
            assert await loop.sock_recv(a, 10) == b"x"
            a.close()  # in the woken step: the registration must be gone already
        assert loop.stats().backend_stats["rebuilds"] == 0
        assert loop.stats().backend_stats["suspect_fds"] == 0

    run(main())


def test_a_finished_wait_is_unregistered_when_the_task_resumes(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        loop.call_later(0.01, b.send, b"x")
        assert await loop.sock_recv(a, 100) == b"x"
        assert not registered(loop, a)

    run(main())


def test_remove_reader_after_a_finished_recv_finds_nothing(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        loop.call_later(0.01, b.send, b"x")
        assert await loop.sock_recv(a, 100) == b"x"
        assert loop.remove_reader(a) is False  # as in stock asyncio: the wait's registration is over

    run(main())


def test_closing_a_socket_after_recv_and_reusing_its_fd_number(loop, run, socketpair):
    """recv finishes, the task closes the socket and opens another that gets the same fd number, in one step:
    a registration of the new socket must reach the kernel (epoll forgot the closed file)."""
    a, b = socketpair()

    async def main():
        loop.call_later(0.01, b.send, b"x")
        assert await loop.sock_recv(a, 100) == b"x"
        fd = a.fileno()
        a.close()
        c, d = socketpair()
        if fd not in (c.fileno(), d.fileno()):
            pytest.skip("the kernel did not reuse the fd number")
        new, peer = (c, d) if c.fileno() == fd else (d, c)
        got = loop.create_future()
        loop.add_reader(new, lambda: got.done() or got.set_result(new.recv(100)))
        peer.send(b"y")
        assert await asyncio.wait_for(got, 2) == b"y"
        loop.remove_reader(new)

    run(main())


def test_recv_on_a_new_socket_with_a_parked_fd_number(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        loop.call_later(0.01, b.send, b"x")
        assert await loop.sock_recv(a, 100) == b"x"
        fd = a.fileno()
        a.close()
        c, d = socketpair()
        if fd not in (c.fileno(), d.fileno()):
            pytest.skip("the kernel did not reuse the fd number")
        new, peer = (c, d) if c.fileno() == fd else (d, c)
        loop.call_later(0.01, peer.send, b"y")
        assert await asyncio.wait_for(loop.sock_recv(new, 100), 2) == b"y"

    run(main())


def test_a_failed_recv_unregisters(loop, run):
    listener = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(listener.getsockname())
    b, _ = listener.accept()
    listener.close()
    a.setblocking(False)

    async def main():
        reader = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        assert registered(loop, a)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        b.close()  # an RST: the waiting recv fails
        with pytest.raises(ConnectionResetError):
            await reader
        assert not registered(loop, a)

    try:
        run(main())
    finally:
        a.close()
