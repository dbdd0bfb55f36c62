"""The socket stream transport, on every backend: writing, flow control, reading, half-close, closing,
faults. Transports are made with ``loop._make_socket_transport`` on one end of a socketpair (or a real TCP
connection where TCP matters); the other end is a plain non-blocking socket the test drives."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest


@pytest.fixture
def make_transport(loop, recorder):
    """``make_transport(sock, protocol=None, **kw)``: (transport, protocol, creation waiter) for ``sock``, made
    through the loop's factory; the protocol defaults to a recorder."""

    def make(sock, protocol=None, **kw):
        protocol = protocol or recorder()
        waiter = loop.create_future()
        transport = loop._make_socket_transport(sock, protocol, waiter, **kw)
        return transport, protocol, waiter

    return make


async def read_exactly(loop, sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = await loop.sock_recv(sock, n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


async def read_to_eof(loop, sock):
    out = bytearray()
    while True:
        chunk = await loop.sock_recv(sock, 65536)
        if not chunk:
            return bytes(out)
        out += chunk


@pytest.fixture
def errors(loop):
    """Contexts passed to the loop's exception handler."""
    seen: list[dict] = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    return seen


def test_connection_made_then_waiter_then_data(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        assert proto.events == ["made"] and proto.transport is transport
        b.send(b"ping")
        await proto.got_data
        assert bytes(proto.data) == b"ping"
        transport.close()
        assert await proto.lost is None

    run(main())


def test_write_goes_straight_to_the_socket(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        transport.write(b"hello")
        assert transport.get_write_buffer_size() == 0
        assert b.recv(100) == b"hello"  # no loop pass needed
        transport.close()
        await proto.lost

    run(main())


def test_write_accepts_bytearray_and_memoryview_and_rejects_str(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        transport.write(bytearray(b"ab"))
        transport.write(memoryview(b"cd"))
        with pytest.raises(TypeError):
            transport.write("text")  # type: ignore[arg-type]
        assert await read_exactly(loop, b, 4) == b"abcd"
        transport.close()
        await proto.lost

    run(main())


def test_buffered_bytearray_is_copied(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        transport.write(b"x" * 4_000_000)  # fills the socket buffer: what follows is buffered
        data = bytearray(b"original")
        transport.write(data)
        data[:] = b"mutated!"
        transport.write_eof()
        received = await read_to_eof(loop, b)
        assert received.endswith(b"original")
        transport.close()
        await proto.lost

    run(main())


def test_large_write_is_buffered_and_flushed_in_order(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)
    payload = bytes(range(256)) * 20_000  # 5 MB, more than any socket buffer

    async def main():
        await waiter
        transport.write(payload)
        transport.write(b"tail")
        assert transport.get_write_buffer_size() > 0
        transport.write_eof()
        assert await read_to_eof(loop, b) == payload + b"tail"
        transport.close()
        await proto.lost

    run(main())


def test_writelines_sends_every_chunk_in_order(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)
    chunks = [b"a" * 100_000, bytearray(b"b" * 300_000), memoryview(b"c" * 2_000_000), b"", b"end"]

    async def main():
        await waiter
        transport.writelines(chunks)
        transport.writelines([b"more", b"!"])
        transport.write_eof()
        assert await read_to_eof(loop, b) == b"".join(bytes(c) for c in chunks) + b"more!"
        transport.close()
        await proto.lost

    run(main())


def test_writelines_copies_what_it_buffers_from_mutable_chunks(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        big = bytearray(b"m" * 4_000_000)  # more than the socket takes: part of it is buffered
        small = bytearray(b"tail")
        transport.writelines([big, small])
        assert transport.get_write_buffer_size() > 0
        big[-1:] = b"X"
        small[:] = b"XXXX"
        with pytest.raises(TypeError):
            transport.writelines(["text"])
        transport.write_eof()
        assert await read_to_eof(loop, b) == b"m" * 4_000_000 + b"tail"
        transport.close()
        await proto.lost

    run(main())


def test_flow_control_pauses_above_high_and_resumes_at_low_water(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        transport.set_write_buffer_limits(high=1000, low=100)
        assert transport.get_write_buffer_limits() == (100, 1000)
        while "pause" not in proto.events:
            transport.write(b"x" * 50_000)
        assert transport.get_write_buffer_size() > 1000
        total = 0
        while "resume" not in proto.events:
            total += len(await loop.sock_recv(b, 1 << 20))
        assert transport.get_write_buffer_size() <= 100
        assert proto.events == ["made", "pause", "resume"]
        transport.close()
        await proto.lost

    run(main())


def test_write_buffer_limits_are_validated(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        assert transport.get_write_buffer_limits() == (16384, 65536)
        transport.set_write_buffer_limits(low=1000)
        assert transport.get_write_buffer_limits() == (1000, 4000)
        with pytest.raises(ValueError):
            transport.set_write_buffer_limits(high=10, low=20)
        transport.close()
        await proto.lost

    run(main())


def test_pause_writing_exception_goes_to_exception_handler(loop, run, socketpair, errors, recorder, make_transport):
    a, b = socketpair()

    class Bad(recorder):
        def pause_writing(self):
            raise ZeroDivisionError

    transport, proto, waiter = make_transport(a, Bad())

    async def main():
        await waiter
        transport.set_write_buffer_limits(high=0)
        transport.write(b"x" * 5_000_000)
        assert [c["message"] for c in errors] == ["protocol.pause_writing() failed"]
        assert isinstance(errors[0]["exception"], ZeroDivisionError)
        transport.abort()
        await proto.lost

    run(main())


def test_pause_and_resume_reading(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        assert transport.is_reading()
        transport.pause_reading()
        assert not transport.is_reading()
        b.send(b"held")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert proto.data == b""
        transport.resume_reading()
        assert transport.is_reading()
        await proto.got_data
        assert proto.data == b"held"
        transport.close()
        assert not transport.is_reading()
        await proto.lost

    run(main())


def test_peer_eof_closes_the_transport_by_default(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        b.shutdown(socket.SHUT_WR)
        assert await proto.lost is None
        assert proto.events == ["made", "eof", "lost"]

    run(main())


def test_eof_received_returning_true_keeps_the_write_side_open(loop, run, socketpair, recorder, make_transport):
    a, b = socketpair()
    proto = recorder()
    proto.keep_open = True
    transport, proto, waiter = make_transport(a, proto)

    async def main():
        await waiter
        b.shutdown(socket.SHUT_WR)
        await proto.got_eof
        assert not transport.is_closing()
        transport.write(b"reply after eof")
        assert await read_exactly(loop, b, 15) == b"reply after eof"
        transport.close()
        await proto.lost

    run(main())


def test_eof_received_runs_once_even_if_reading_is_paused_and_resumed_after(loop, run, socketpair, recorder, make_transport):
    a, b = socketpair()
    proto = recorder()
    proto.keep_open = True
    transport, proto, waiter = make_transport(a, proto)

    async def main():
        await waiter
        b.shutdown(socket.SHUT_WR)
        await proto.got_eof
        transport.pause_reading()
        transport.resume_reading()
        for _ in range(5):
            await asyncio.sleep(0)
        assert proto.events.count("eof") == 1
        transport.close()
        await proto.lost

    run(main())


def test_write_eof_half_closes_after_the_buffer_is_sent(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)
    payload = b"z" * 3_000_000

    async def main():
        await waiter
        assert transport.can_write_eof()
        transport.write(payload)
        transport.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            transport.write(b"more")
        assert await read_to_eof(loop, b) == payload
        b.send(b"still readable")  # our read side stays open
        await proto.got_data
        assert proto.data == b"still readable"
        transport.close()
        await proto.lost

    run(main())


def test_close_flushes_buffered_data_before_connection_lost(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)
    payload = b"q" * 4_000_000

    async def main():
        await waiter
        transport.write(payload)
        transport.close()
        assert transport.is_closing()
        assert not proto.lost.done()
        assert await read_to_eof(loop, b) == payload
        assert await proto.lost is None

    run(main())


def test_abort_drops_buffered_data(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)
    payload = b"q" * 4_000_000

    async def main():
        await waiter
        transport.write(payload)
        transport.abort()
        assert transport.get_write_buffer_size() == 0
        assert await proto.lost is None
        assert len(await read_to_eof(loop, b)) < len(payload)

    run(main())


def test_connection_lost_is_called_exactly_once(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        transport.close()
        transport.close()
        transport.abort()
        await proto.lost
        await asyncio.sleep(0)
        assert proto.events.count("lost") == 1

    run(main())


def test_writes_after_connection_lost_are_dropped_with_a_warning(loop, run, socketpair, caplog, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        transport.abort()
        await proto.lost
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(10):
                transport.write(b"into the void")
        warnings = [r for r in caplog.records if "socket.send() raised exception." in r.getMessage()]
        assert len(warnings) == 6  # stock asyncio: from the 5th dropped write on

    run(main())


def test_peer_reset_gives_connection_lost_with_the_error(loop, run, errors, make_transport):
    async def main():
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, listener.getsockname())
        server_side, _ = await loop.sock_accept(listener)
        listener.close()
        transport, proto, waiter = make_transport(client)
        await waiter
        # SO_LINGER 0 makes close() send a RST instead of a FIN.
        server_side.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        server_side.close()
        exc = await proto.lost
        assert isinstance(exc, ConnectionResetError)
        assert errors == []  # a peer reset is not a bug: no exception handler call

    run(main())


def test_write_to_a_closed_peer_gives_broken_pipe(loop, run, socketpair, errors, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)
    proto.keep_open = True

    async def main():
        await waiter
        transport.pause_reading()  # so the peer's close is noticed by write, not read
        b.close()
        transport.write(b"nobody listens")
        exc = await proto.lost
        assert isinstance(exc, (BrokenPipeError, ConnectionResetError))
        assert errors == []

    run(main())


@pytest.mark.parametrize("method", ["data_received", "eof_received"])
def test_protocol_method_raising_is_fatal_and_reported(loop, run, socketpair, errors, method, recorder, make_transport):
    a, b = socketpair()

    class Bad(recorder):
        def data_received(self, data):
            raise ValueError("boom")

        def eof_received(self):
            raise ValueError("boom")

    transport, proto, waiter = make_transport(a, Bad())

    async def main():
        await waiter
        if method == "data_received":
            b.send(b"x")
        else:
            b.shutdown(socket.SHUT_WR)
        exc = await proto.lost
        assert isinstance(exc, ValueError)
        assert len(errors) == 1
        assert errors[0]["message"] == f"Fatal error: protocol.{method}() call failed."
        assert errors[0]["transport"] is transport
        assert transport.is_closing()

    run(main())


def test_connection_made_raising_is_reported_and_the_loop_keeps_running(loop, run, socketpair, errors, recorder, make_transport):
    a, b = socketpair()

    class Bad(recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            raise KeyError("made")

    transport, proto, waiter = make_transport(a, Bad())

    async def main():
        await waiter
        assert isinstance(errors[0]["exception"], KeyError)
        transport.close()
        await proto.lost

    run(main())


class Buffered(asyncio.BufferedProtocol):
    def __init__(self, loop, size=7):
        self.buf = bytearray(size)
        self.data = bytearray()
        self.lost = loop.create_future()
        self.made = loop.create_future()
        self.sizes = []

    def connection_made(self, transport):
        self.made.set_result(transport)

    def get_buffer(self, sizehint):
        self.sizes.append(sizehint)
        return self.buf

    def buffer_updated(self, nbytes):
        self.data += self.buf[:nbytes]

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_buffered_protocol_reads_into_its_own_buffer(loop, run, socketpair, make_transport):
    a, b = socketpair()
    proto = Buffered(loop)
    transport, proto, waiter = make_transport(a, proto)

    async def main():
        await waiter
        b.sendall(b"0123456789" * 10)
        b.shutdown(socket.SHUT_WR)
        assert await proto.lost is None
        assert proto.data == b"0123456789" * 10
        assert proto.sizes[0] == -1

    run(main())


@pytest.mark.parametrize("failure", ["get_buffer raises", "empty buffer", "buffer_updated raises"])
def test_buffered_protocol_errors_are_fatal(loop, run, socketpair, errors, failure, make_transport):
    a, b = socketpair()

    class Bad(Buffered):
        def get_buffer(self, sizehint):
            if failure == "get_buffer raises":
                raise ZeroDivisionError
            return bytearray() if failure == "empty buffer" else self.buf

        def buffer_updated(self, nbytes):
            raise ZeroDivisionError

    proto = Bad(loop)
    transport, proto, waiter = make_transport(a, proto)

    async def main():
        await waiter
        b.send(b"data")
        exc = await proto.lost
        expected = "buffer_updated" if failure == "buffer_updated raises" else "get_buffer"
        assert errors[0]["message"] == f"Fatal error: protocol.{expected}() call failed."
        assert isinstance(exc, RuntimeError if failure == "empty buffer" else ZeroDivisionError)

    run(main())


def test_set_protocol_switches_between_plain_and_buffered(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, first, waiter = make_transport(a)

    async def main():
        await waiter
        second = Buffered(loop)
        transport.set_protocol(second)
        assert transport.get_protocol() is second
        b.send(b"to the second")
        b.shutdown(socket.SHUT_WR)
        await second.lost
        assert second.data == b"to the second"
        assert first.data == b""

    run(main())


def test_get_extra_info(loop, run, make_transport):
    async def main():
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, listener.getsockname())
        server_side, _ = await loop.sock_accept(listener)
        transport, proto, waiter = make_transport(client)
        await waiter
        view = transport.get_extra_info("socket")
        assert view.fileno() == client.fileno()
        assert not hasattr(view, "close")
        assert transport.get_extra_info("sockname") == client.getsockname()
        assert transport.get_extra_info("peername") == listener.getsockname()
        assert transport.get_extra_info("nothing", "default") == "default"
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        transport.close()
        await proto.lost
        server_side.close()
        listener.close()

    run(main())


def test_transport_owns_its_fd_until_closed(loop, run, socketpair, recorder, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        assert loop._fdtable.owner(a.fileno()) is transport
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(a.fileno(), lambda: None)
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop._make_socket_transport(a, recorder())
        fd = a.fileno()
        transport.close()
        await proto.lost
        assert loop._fdtable.owner(fd) is None

    run(main())


def test_empty_waiter_resolves_when_buffer_drains(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        assert transport._multiloop_sendfile_native is True
        assert transport._sock is a
        transport.write(b"w" * 3_000_000)
        empty = transport._make_empty_waiter()
        with pytest.raises(RuntimeError):
            transport._make_empty_waiter()
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            transport.write(b"x")
        reader = loop.create_task(read_exactly(loop, b, 3_000_000))
        await empty
        transport._reset_empty_waiter()
        assert len(await reader) == 3_000_000
        transport.close()
        await proto.lost

    run(main())


def test_repr_says_state(loop, run, socketpair, make_transport):
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)

    async def main():
        await waiter
        assert f"fd={a.fileno()}" in repr(transport) and "read=polling" in repr(transport)
        transport.close()
        assert "closing" in repr(transport)
        await proto.lost
        assert "closed" in repr(transport)

    run(main())


def test_large_then_small_reads_arrive_unchanged_and_in_order_then_eof(loop, run, socketpair, make_transport):
    # Large reads take the no-copy recv() path, small ones the shared buffer; the switch in either direction
    # must lose, repeat or reorder nothing, and EOF must be seen on either path.
    a, b = socketpair()
    transport, proto, waiter = make_transport(a)
    pattern = bytes(range(256)) * 1024  # 256 KiB, every offset distinguishable mod 256
    sent = bytearray()

    async def send(data: bytes) -> None:
        await loop.sock_sendall(b, data)
        sent.extend(data)
        await proto.until(len(sent))

    async def main():
        await waiter
        for size in (100, 200_000, 70_000, 50, 3, 120_000, 10):
            await send(pattern[len(sent) % 256:][:size])
        assert bytes(proto.data) == bytes(sent)
        await send(pattern[:100_000])
        b.shutdown(socket.SHUT_WR)  # EOF right after a large read
        await proto.got_eof
        assert bytes(proto.data) == bytes(sent)
        transport.close()
        assert await proto.lost is None

    run(main())
