"""The socket transport's engine (multiloop.net.streamengine), on every backend and in both modes: what it does
with the socket itself must be exactly what the socket's own methods would do."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from multiloop import compiled
from multiloop.net import streamengine


@pytest.mark.skipif(not compiled.ACTIVE, reason="the compiled engine only")
def test_the_compiled_engine_reads_the_socket_fd_from_the_socket_object():
    # The layout probe (streamengine.pxd) passed on this Python: the syscalls are made on the fd directly.
    # If a CPython release changes _socket.socket's struct, this fails (the engine itself falls back safely).
    assert streamengine._SOCK_FAST


def test_a_socket_closed_behind_the_transport_fails_with_ebadf_and_never_reaches_a_reused_fd(
        loop, run, socketpair, recorder):
    a, b = socketpair()
    proto = recorder()
    waiter = loop.create_future()
    transport = loop._make_socket_transport(a, proto, waiter)

    async def main():
        await waiter
        fd = a.fileno()
        transport.pause_reading()  # no registration left for the fd number we are about to reuse
        a.close()  # user error: the transport's socket closed under it
        c, d = socketpair()
        reused = c if c.fileno() == fd else d if d.fileno() == fd else None
        transport.write(b"must not go anywhere")
        exc = await proto.lost
        assert isinstance(exc, OSError) and exc.errno == errno.EBADF
        if reused is not None:
            peer = d if reused is c else c
            with pytest.raises(BlockingIOError):
                peer.recv(100)  # nothing was written to the socket that got the fd number

    run(main())


def test_data_received_can_write_back_at_once(loop, run, socketpair, recorder):
    # The engine calls data_received, which calls the engine's write: nested use of one engine.
    a, b = socketpair()

    class EchoRecorder(recorder):
        def data_received(self, data):
            super().data_received(data)
            self.transport.write(data.upper())

    proto = EchoRecorder()
    waiter = loop.create_future()
    transport = loop._make_socket_transport(a, proto, waiter)

    async def main():
        await waiter
        for word in (b"one", b"two", b"three"):
            b.send(word)
            got = b""
            while len(got) < len(word):
                got += await loop.sock_recv(b, 100)
            assert got == word.upper()
        transport.close()
        assert await proto.lost is None

    run(main())


def test_a_large_message_switches_to_large_reads_and_back(loop, run, socketpair, recorder):
    a, b = socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    proto = recorder()
    waiter = loop.create_future()
    transport = loop._make_socket_transport(a, proto, waiter)
    big = bytes(range(256)) * 256  # 64 KiB: more than LARGE_READ

    async def main():
        await waiter
        await loop.sock_sendall(b, big)
        await proto.wait_for(lambda: len(proto.data) >= len(big))
        await loop.sock_sendall(b, b"small")
        await proto.wait_for(lambda: len(proto.data) >= len(big) + 5)
        assert bytes(proto.data) == big + b"small"
        transport.close()
        await proto.lost

    run(main())


def test_eof_and_a_reset_reach_the_protocol_while_reading_large(loop, run, recorder):
    # After a large read the engine reads into fresh bytes objects: EOF (an empty read) and an error there take
    # the same way out as on the small-read path.
    big = bytes(range(256)) * 256  # 64 KiB: more than LARGE_READ

    async def main(reset: bool):
        if reset:  # an RST needs TCP
            with socket.create_server(("127.0.0.1", 0)) as listener:
                b = socket.create_connection(listener.getsockname())
                a = listener.accept()[0]
        else:
            a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        proto = recorder()
        waiter = loop.create_future()
        loop._make_socket_transport(a, proto, waiter)
        await waiter
        await loop.sock_sendall(b, big)
        await proto.wait_for(lambda: len(proto.data) >= len(big))
        if reset:
            b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        b.close()  # with SO_LINGER 0: an RST, so the next read fails with ECONNRESET
        exc = await proto.lost
        assert bytes(proto.data) == big
        if reset:
            assert isinstance(exc, ConnectionResetError) and "eof" not in proto.events
        else:
            assert exc is None and proto.events == ["made", "data", "eof", "lost"]

    run(main(False))
    run(main(True))


def test_large_reads_ask_for_less_than_the_allocators_mmap_threshold(loop, run, socketpair, recorder):
    # Each large read is a fresh bytes object: at 128 KiB or more glibc would mmap it (page faults on every
    # read, an munmap at every free). The chunks data_received gets after the switch show the size asked for.
    threshold = 128 * 1024
    a, b = socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024 * 1024)
    sizes: list[int] = []

    class Sizes(recorder):
        def data_received(self, data):
            sizes.append(len(data))
            super().data_received(data)

    proto = Sizes()
    waiter = loop.create_future()
    transport = loop._make_socket_transport(a, proto, waiter)
    first = b"f" * (64 * 1024)
    bulk = bytes(range(256)) * 2048  # 512 KiB

    def queued():
        try:
            return len(a.recv(threshold, socket.MSG_PEEK))
        except BlockingIOError:
            return 0

    async def main():
        await waiter
        await loop.sock_sendall(b, first)
        await proto.wait_for(lambda: len(proto.data) >= len(first))
        assert max(sizes) >= 16 * 1024  # switched to large reads (streamengine.LARGE_READ)
        del sizes[:]
        transport.pause_reading()
        sending = asyncio.ensure_future(loop.sock_sendall(b, bulk))
        while queued() < threshold:
            await asyncio.sleep(0.001)  # until more than one large read may take waits in the socket
        transport.resume_reading()
        await proto.wait_for(lambda: len(proto.data) >= len(first) + len(bulk))
        await sending
        assert bytes(proto.data) == first + bulk
        assert 64 * 1024 <= max(sizes) < threshold - 64  # a bytes object's header on top: below the threshold
        transport.close()
        await proto.lost

    run(main())


def test_a_socket_subclass_gets_its_own_send_and_recv_into_called(loop, run, recorder):
    # The engine makes syscalls itself only for a plain socket.socket; a subclass's overrides still run.
    calls: list[str] = []

    class Traced(socket.socket):
        def send(self, data, *args):
            calls.append("send")
            return super().send(data, *args)

        def recv_into(self, buf, *args):
            calls.append("recv_into")
            return super().recv_into(buf, *args)

    a0, b = socket.socketpair()
    a = Traced(a0.family, a0.type, fileno=a0.detach())
    a.setblocking(False)
    b.setblocking(False)
    proto = recorder()
    waiter = loop.create_future()
    transport = loop._make_socket_transport(a, proto, waiter)

    async def main():
        await waiter
        transport.write(b"out")
        assert await loop.sock_recv(b, 100) == b"out"
        b.send(b"in")
        await proto.got_data
        assert bytes(proto.data) == b"in"
        assert calls == ["send", "recv_into"]
        transport.close()
        await proto.lost

    try:
        run(main())
    finally:
        b.close()
