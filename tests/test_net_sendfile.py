"""loop.sendfile and loop.sock_sendfile on every backend: zero-copy path, fallback, arguments, faults."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys

import pytest

HOST = "127.0.0.1"
DATA = os.urandom(1024 * 1024 + 17)


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    with open(path, "rb") as f:
        yield f


class Sink(asyncio.Protocol):
    """Collects what arrives; ``done`` resolves at connection_lost. Optionally aborts after N bytes."""

    def __init__(self, loop, abort_after=0, small_rcvbuf=False):
        self.data = bytearray()
        self.done = loop.create_future()
        self.abort_after = abort_after
        self.small_rcvbuf = small_rcvbuf or bool(abort_after)
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        if self.small_rcvbuf:
            # A small receive buffer so the sender really has to wait for us.
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    def data_received(self, data):
        self.data += data
        if self.abort_after and len(self.data) >= self.abort_after and not self.transport.is_closing():
            self.transport.abort()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        self.done.set_result(exc)


class Client(asyncio.Protocol):
    def __init__(self, loop):
        self.lost = loop.create_future()
        self.data = bytearray()
        self.paused = 0
        self.resumed = 0

    def data_received(self, data):
        self.data += data

    def pause_writing(self):
        self.paused += 1

    def resume_writing(self):
        self.resumed += 1

    def connection_lost(self, exc):
        self.lost.set_result(exc)


async def pair(loop, **sink_kw):
    sink = Sink(loop, **sink_kw)
    server = await loop.create_server(lambda: sink, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    tr, client = await loop.create_connection(lambda: Client(loop), HOST, port)
    return server, sink, tr, client


async def finish(server, sink, tr):
    tr.close()
    await sink.done
    server.close()
    await server.wait_closed()


def test_sendfile_sends_the_whole_file_and_moves_the_position(loop, run, data_file):
    async def main():
        server, sink, tr, client = await pair(loop)
        assert await loop.sendfile(tr, data_file) == len(DATA)
        assert data_file.tell() == len(DATA)
        await finish(server, sink, tr)
        assert bytes(sink.data) == DATA

    run(main())


def test_sendfile_with_offset_and_count(loop, run, data_file):
    async def main():
        server, sink, tr, client = await pair(loop)
        assert await loop.sendfile(tr, data_file, 1000, 100) == 100
        assert data_file.tell() == 1100
        await finish(server, sink, tr)
        assert bytes(sink.data) == DATA[1000:1100]

    run(main())


def test_sendfile_keeps_order_with_writes_before_and_after(loop, run, data_file):
    async def main():
        server, sink, tr, client = await pair(loop)
        tr.write(b"PRE" * 100000)  # more than the kernel takes at once: some is buffered
        assert await loop.sendfile(tr, data_file) == len(DATA)
        tr.write(b"POST")
        await finish(server, sink, tr)
        assert bytes(sink.data) == b"PRE" * 100000 + DATA + b"POST"

    run(main())


class _NoFd(io.BytesIO):
    def fileno(self):
        raise io.UnsupportedOperation("no fd")


@pytest.mark.parametrize("zero_copy", [True, False])
def test_file_position_after_sending_nothing_follows_this_pythons_rule(loop, run, data_file, zero_copy):
    # 3.14+: the position is always left at offset + sent; before: untouched when nothing was sent.
    async def main():
        server, sink, tr, client = await pair(loop)
        f = data_file if zero_copy else _NoFd(DATA)
        f.seek(123)
        assert await loop.sendfile(tr, f, len(DATA)) == 0
        position = f.tell()
        await finish(server, sink, tr)
        return position

    # (the fallback seeks to a non-zero offset first on every Python, so only zero-copy differs)
    assert run(main()) == (len(DATA) if sys.version_info >= (3, 14) or not zero_copy else 123)


def test_sock_sendfile_fallback_with_offset_zero_follows_this_pythons_rule(loop, run):
    # 3.14+: the fallback seeks to offset 0 first; before, offset 0 meant "from the current position" (and
    # the position is then left at offset + sent, as stock asyncio does).
    async def main():
        server, sink, sock = await sock_pair(loop)
        f = _NoFd(b"abcdef")
        f.seek(4)
        sent = await loop.sock_sendfile(sock, f, 0)
        await sock_finish(server, sink, sock)
        return sent, bytes(sink.data), f.tell()

    if sys.version_info >= (3, 14):
        assert run(main()) == (6, b"abcdef", 6)
    else:
        assert run(main()) == (2, b"ef", 2)


def test_sendfile_of_an_empty_file_returns_zero(loop, run, tmp_path):
    async def main():
        (tmp_path / "empty").write_bytes(b"")
        server, sink, tr, client = await pair(loop)
        with open(tmp_path / "empty", "rb") as f:
            assert await loop.sendfile(tr, f) == 0
            assert f.tell() == 0
        await finish(server, sink, tr)

    run(main())


def test_transport_write_is_refused_while_sendfile_runs(loop, run, data_file):
    async def main():
        server, sink, tr, client = await pair(loop)
        task = loop.create_task(loop.sendfile(tr, data_file))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            tr.write(b"data")
        assert await task == len(DATA)
        tr.write(b"ok again")
        await finish(server, sink, tr)
        assert bytes(sink.data) == DATA + b"ok again"

    run(main())


def test_sendfile_restores_protocol_and_reading(loop, run, data_file):
    async def main():
        server, sink, tr, client = await pair(loop)
        assert await loop.sendfile(tr, data_file, count=1000) == 1000
        assert tr.get_protocol() is client
        assert tr.is_reading()
        sink.transport.write(b"reply")
        while len(client.data) < 5:
            await asyncio.sleep(0)
        assert bytes(client.data) == b"reply"
        await finish(server, sink, tr)

    run(main())


def test_sendfile_falls_back_for_a_file_without_fd(loop, run):
    async def main():
        server, sink, tr, client = await pair(loop)
        f = io.BytesIO(DATA)
        assert await loop.sendfile(tr, f, 10) == len(DATA) - 10
        assert f.tell() == len(DATA)
        await finish(server, sink, tr)
        assert bytes(sink.data) == DATA[10:]

    run(main())


def test_sendfile_without_fallback_raises_when_zero_copy_is_impossible(loop, run):
    async def main():
        server, sink, tr, client = await pair(loop)
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sendfile(tr, io.BytesIO(DATA), fallback=False)
        assert tr.get_protocol() is client and tr.is_reading()
        await finish(server, sink, tr)
        assert not sink.data

    run(main())


def test_forced_fallback_with_flow_control_syncs_the_protocol(loop, run, data_file):
    """The fallback path on a plain transport: small high-water mark, pause/resume restored exactly."""
    async def main():
        async def not_available(*args):
            raise asyncio.SendfileNotAvailableError("forced")

        loop._sendfile_native = not_available
        server, sink, tr, client = await pair(loop)
        tr.set_write_buffer_limits(high=4096)
        assert await loop.sendfile(tr, data_file) == len(DATA)
        assert data_file.tell() == len(DATA)
        assert tr.get_protocol() is client
        while tr.get_write_buffer_size():
            await asyncio.sleep(0)
        # Once everything is out, the application protocol has been resumed as often as it was paused.
        assert client.paused == client.resumed
        await finish(server, sink, tr)
        assert bytes(sink.data) == DATA

    run(main())


def test_sendfile_on_a_closing_transport_is_refused(loop, run, data_file):
    async def main():
        server, sink, tr, client = await pair(loop)
        tr.close()
        with pytest.raises(RuntimeError, match="is closing"):
            await loop.sendfile(tr, data_file)
        assert data_file.tell() == 0
        await sink.done
        server.close()
        await server.wait_closed()

    run(main())


def test_sendfile_on_a_datagram_transport_is_not_supported(loop, run, data_file):
    async def main():
        tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, family=socket.AF_INET)
        try:
            with pytest.raises(RuntimeError, match="not supported"):
                await loop.sendfile(tr, data_file)
            assert data_file.tell() == 0
        finally:
            tr.close()
            await asyncio.sleep(0)

    run(main())


@pytest.mark.parametrize("kwargs, exc", [
    ({"offset": -1}, ValueError), ({"offset": "0"}, TypeError), ({"count": 0}, ValueError),
    ({"count": -5}, ValueError), ({"count": 1.5}, TypeError),
])
def test_sendfile_argument_checks(loop, run, data_file, kwargs, exc):
    async def main():
        server, sink, tr, client = await pair(loop)
        with pytest.raises(exc):
            await loop.sendfile(tr, data_file, **kwargs)
        await finish(server, sink, tr)

    run(main())


def test_sendfile_refuses_a_text_file(loop, run, tmp_path):
    async def main():
        (tmp_path / "t.txt").write_text("text")
        server, sink, tr, client = await pair(loop)
        with open(tmp_path / "t.txt") as f:
            with pytest.raises(ValueError, match="binary mode"):
                await loop.sendfile(tr, f)
        await finish(server, sink, tr)

    run(main())


@pytest.mark.parametrize("force_fallback", [False, True])
def test_sendfile_to_a_peer_that_closes_midway_raises_connection_error(loop, run, data_file, force_fallback):
    async def main():
        if force_fallback:
            async def not_available(*args):
                raise asyncio.SendfileNotAvailableError("forced")

            loop._sendfile_native = not_available
        server, sink, tr, client = await pair(loop, abort_after=1024)
        tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        tr.set_write_buffer_limits(high=4096)
        with pytest.raises(ConnectionError):
            await loop.sendfile(tr, data_file)
        assert 1024 <= data_file.tell() < len(DATA)
        assert tr.is_closing()  # a stream broken mid-file is closed at once, as after a failed write
        assert isinstance(await client.lost, OSError)  # and the application hears why
        await sink.done
        server.close()
        await server.wait_closed()

    run(main())


def test_cancelled_sendfile_leaves_the_transport_usable(loop, run, data_file):
    async def main():
        server, sink, tr, client = await pair(loop, small_rcvbuf=True)
        tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sink.transport.pause_reading()  # the peer stops reading: the sendfile must wait
        task = loop.create_task(loop.sendfile(tr, data_file))
        for _ in range(10):
            await asyncio.sleep(0)
        assert not task.done()  # 1 MiB cannot fit in 4 KiB socket buffers
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert tr.get_protocol() is client and tr.is_reading() and not tr.is_closing()
        sent = data_file.tell()
        tr.write(b"END")
        sink.transport.resume_reading()
        while len(sink.data) < sent + 3:
            await asyncio.sleep(0)
        assert bytes(sink.data) == DATA[:sent] + b"END"
        await finish(server, sink, tr)

    run(main())


# ------------------------------------------------------------------------------------ sock_sendfile
async def sock_pair(loop):
    sink = Sink(loop)
    server = await loop.create_server(lambda: sink, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, (HOST, port))
    return server, sink, sock


async def sock_finish(server, sink, sock):
    sock.close()
    await sink.done
    server.close()
    await server.wait_closed()


def test_sock_sendfile_sends_the_file(loop, run, data_file):
    async def main():
        server, sink, sock = await sock_pair(loop)
        assert await loop.sock_sendfile(sock, data_file, 1000, 500000) == 500000
        assert data_file.tell() == 501000
        await sock_finish(server, sink, sock)
        assert bytes(sink.data) == DATA[1000:501000]

    run(main())


def test_sock_sendfile_mixes_with_sock_sendall(loop, run, data_file):
    async def main():
        server, sink, sock = await sock_pair(loop)
        await loop.sock_sendall(sock, b"A" * 70000)
        assert await loop.sock_sendfile(sock, data_file) == len(DATA)
        await loop.sock_sendall(sock, b"Z")
        await sock_finish(server, sink, sock)
        assert bytes(sink.data) == b"A" * 70000 + DATA + b"Z"

    run(main())


def test_sock_sendfile_falls_back_for_a_file_without_fd(loop, run):
    async def main():
        server, sink, sock = await sock_pair(loop)
        f = io.BytesIO(DATA)
        assert await loop.sock_sendfile(sock, f, 5, 300000) == 300000
        assert f.tell() == 300005
        await sock_finish(server, sink, sock)
        assert bytes(sink.data) == DATA[5:300005]

    run(main())


def test_sock_sendfile_without_fallback_raises(loop, run):
    async def main():
        server, sink, sock = await sock_pair(loop)
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(sock, io.BytesIO(DATA), fallback=False)
        await sock_finish(server, sink, sock)

    run(main())


def test_sock_sendfile_refuses_a_blocking_socket(loop, run, data_file):
    async def main():
        with socket.socket() as sock:
            with pytest.raises(ValueError, match="non-blocking"):
                await loop.sock_sendfile(sock, data_file)

    run(main())


def test_sock_sendfile_refuses_a_datagram_socket(loop, run, data_file):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            with pytest.raises(ValueError, match="SOCK_STREAM"):
                await loop.sock_sendfile(sock, data_file)

    run(main())


def test_sock_sendfile_to_a_closed_peer_raises(loop, run, data_file, socketpair):
    async def main():
        a, b = socketpair()
        b.close()
        with pytest.raises((ConnectionError, asyncio.SendfileNotAvailableError)):
            await loop.sock_sendfile(a, data_file, fallback=False)
        with pytest.raises(ConnectionError):
            await loop.sock_sendfile(a, data_file)

    run(main())


def test_data_that_arrives_during_a_sendfile_still_reaches_a_buffered_protocol(loop):
    """Reading is paused during a sendfile, but a layer (TLS) may deliver what it already decrypted."""
    from multiloop.net.sendfile import _SendfileSession

    class App(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(4)  # smaller than the data: filled in several rounds
            self.got = bytearray()

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            self.got += self.buf[:nbytes]

    class FakeTransport:
        def __init__(self, protocol):
            self.protocol = protocol
            self.reading = True

        def get_protocol(self):
            return self.protocol

        def set_protocol(self, protocol):
            self.protocol = protocol

        def is_reading(self):
            return self.reading

        def pause_reading(self):
            self.reading = False

        def resume_reading(self):
            self.reading = True

        def get_write_buffer_limits(self):
            return (16384, 65536)

        def get_write_buffer_size(self):
            return 0

        def is_closing(self):
            return False

    app = App()
    transport = FakeTransport(app)
    session = _SendfileSession(loop, transport)
    assert transport.get_protocol() is session and not transport.is_reading()
    session.data_received(b"0123456789")
    session.restore()
    assert bytes(app.got) == b"0123456789"
    assert transport.get_protocol() is app and transport.is_reading()
