"""create_datagram_endpoint and the datagram transport on every backend."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import pytest

HOST = "127.0.0.1"


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


async def close(*transports):
    for tr in transports:
        tr.close()
    for tr in transports:
        proto = tr.get_protocol()
        if proto is not None and hasattr(proto, "lost"):
            await proto.lost


# --------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("family, host", [(socket.AF_INET, HOST), (socket.AF_INET6, "::1")])
def test_udp_round_trip(loop, run, family, host, recorder):
    if family == socket.AF_INET6 and not ipv6_available():
        pytest.skip("no IPv6 on this machine")

    async def main():
        s_tr, server = await loop.create_datagram_endpoint(lambda: recorder(echo=True),
                                                           local_addr=(host, 0), family=family)
        assert server.events == ["made"] and server.transport is s_tr
        addr = s_tr.get_extra_info("sockname")
        c_tr, client = await loop.create_datagram_endpoint(recorder, remote_addr=addr[:2])
        c_tr.sendto(b"hello")
        await client.wait_for(lambda: client.received)
        assert client.received[0][0] == b"echo:hello"
        assert server.received[0] == (b"hello", c_tr.get_extra_info("sockname"))
        await close(c_tr, s_tr)

    run(main())


def test_unix_datagram_round_trip(loop, run, tmp_path, recorder):
    async def main():
        srv_path, cli_path = str(tmp_path / "srv"), str(tmp_path / "cli")
        s_tr, server = await loop.create_datagram_endpoint(lambda: recorder(echo=True),
                                                           local_addr=srv_path, family=socket.AF_UNIX)
        c_tr, client = await loop.create_datagram_endpoint(recorder, local_addr=cli_path,
                                                           remote_addr=srv_path, family=socket.AF_UNIX)
        c_tr.sendto(b"via unix")
        await client.wait_for(lambda: client.received)
        assert client.received == [(b"echo:via unix", srv_path)]
        assert c_tr.get_extra_info("peername") == srv_path
        await close(c_tr, s_tr)

    run(main())


def test_unix_datagram_replaces_a_stale_socket_file(loop, run, tmp_path, recorder):
    async def main():
        path = str(tmp_path / "stale")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        stale.bind(path)
        stale.close()  # the path stays behind
        tr, _ = await loop.create_datagram_endpoint(recorder, local_addr=path,
                                                    family=socket.AF_UNIX)
        assert tr.get_extra_info("sockname") == path
        await close(tr)

    run(main())


def test_unix_datagram_never_removes_a_regular_file(loop, run, tmp_path, recorder):
    async def main():
        path = tmp_path / "precious"
        path.write_text("keep me")
        with pytest.raises(OSError):
            await loop.create_datagram_endpoint(recorder, local_addr=str(path),
                                                family=socket.AF_UNIX)
        assert path.read_text() == "keep me"

    run(main())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract namespace is Linux only")
def test_unix_datagram_abstract_namespace(loop, run, recorder):
    async def main():
        name = f"\0multiloop-test-{os.getpid()}-{id(loop)}"
        s_tr, server = await loop.create_datagram_endpoint(recorder, local_addr=name,
                                                           family=socket.AF_UNIX)
        c_tr, _ = await loop.create_datagram_endpoint(recorder, remote_addr=name,
                                                      family=socket.AF_UNIX)
        c_tr.sendto(b"abstract")
        await server.wait_for(lambda: server.received)
        assert server.received[0][0] == b"abstract"
        await close(c_tr, s_tr)

    run(main())


def test_endpoint_from_an_existing_socket(loop, run, recorder):
    async def main():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
        tr, proto = await loop.create_datagram_endpoint(recorder, sock=sock)
        assert sock.gettimeout() == 0  # made non-blocking
        assert tr.get_extra_info("sockname") == sock.getsockname()
        assert tr.get_extra_info("peername") is None
        assert tr.get_extra_info("socket").fileno() == sock.fileno()
        await close(tr)
        assert sock.fileno() == -1  # the transport owned it

    run(main())


def test_transport_types_and_registration(loop, run, recorder):
    async def main():
        tr, _ = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0))
        assert isinstance(tr, asyncio.DatagramTransport) and isinstance(tr, asyncio.Transport)
        fd = tr.get_extra_info("socket").fileno()
        with pytest.raises(RuntimeError, match="used by transport"):
            loop.add_reader(fd, lambda: None)
        await close(tr)

    run(main())


# ----------------------------------------------------------------------------- connected endpoints
def test_connected_endpoint_refuses_another_destination(loop, run, recorder):
    async def main():
        s_tr, server = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0))
        addr = s_tr.get_extra_info("sockname")
        c_tr, _ = await loop.create_datagram_endpoint(recorder, remote_addr=addr)
        with pytest.raises(ValueError, match="Invalid address"):
            c_tr.sendto(b"x", (HOST, addr[1] + 1 if addr[1] < 65535 else 1))
        c_tr.sendto(b"same address is fine", addr)
        c_tr.sendto(b"no address is fine")
        await server.wait_for(lambda: len(server.received) == 2)
        await close(c_tr, s_tr)

    run(main())


def test_icmp_refusal_goes_to_error_received(loop, run, recorder):
    async def main():
        # A port with nobody on it: bind, note the port, close.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((HOST, 0))
        addr = probe.getsockname()
        probe.close()
        tr, proto = await loop.create_datagram_endpoint(recorder, remote_addr=addr)
        tr.sendto(b"anyone?")
        await proto.wait_for(lambda: proto.errors)
        assert isinstance(proto.errors[0], ConnectionRefusedError)
        assert not tr.is_closing()  # not fatal for a datagram endpoint
        await close(tr)

    run(main())


# ---------------------------------------------------------------------------- buffering, flow control
def test_sendto_buffers_when_the_kernel_is_full_and_flushes_in_order(loop, run, recorder):
    async def main():
        # A Unix datagram pair: the sender gets EAGAIN once the unread receiver queue is full.
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        b.setblocking(False)
        tr, proto = await loop.create_datagram_endpoint(recorder, sock=a)
        tr.set_write_buffer_limits(high=4000, low=1000)
        n = 0
        while tr.get_write_buffer_size() <= 4000:
            tr.sendto(b"%06d" % n + b"." * 994)
            n += 1
        assert proto.events == ["made", "pause"]
        got = []
        while len(got) < n:
            try:
                got.append(b.recv(2000))
            except BlockingIOError:
                await asyncio.sleep(0)
        assert [int(d[:6]) for d in got] == list(range(n))
        assert tr.get_write_buffer_size() == 0
        assert proto.events == ["made", "pause", "resume"]
        await close(tr)
        b.close()

    run(main())


def test_close_flushes_and_abort_drops_buffered_datagrams(loop, run, recorder):
    async def main():
        for how in ("close", "abort"):
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            b.setblocking(False)
            tr, proto = await loop.create_datagram_endpoint(recorder, sock=a)
            n = 0
            while not tr.get_write_buffer_size():
                tr.sendto(b"%06d" % n)
                n += 1
            tr.sendto(b"last")
            getattr(tr, how)()
            assert tr.is_closing()
            got = []
            while not proto.lost.done():
                try:
                    got.append(b.recv(100))
                except BlockingIOError:
                    await asyncio.sleep(0)
            while True:
                try:
                    got.append(b.recv(100))
                except BlockingIOError:
                    break
            if how == "close":
                assert got[-1] == b"last" and len(got) == n + 1
            else:
                assert b"last" not in got
            b.close()

    run(main())


def test_sendto_on_a_closed_endpoint_is_dropped_quietly(loop, run, caplog, recorder):
    async def main():
        for remote in (False, True):
            if remote:
                tr, proto = await loop.create_datagram_endpoint(recorder, remote_addr=(HOST, 9))
            else:
                tr, proto = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0))
            await close(tr)
            for _ in range(10):
                tr.sendto(b"into the void", (HOST, 9))  # no exception
            assert proto.errors == []
        assert "socket.send() raised exception." in caplog.text  # warned after a few

    run(main())


def test_an_unconnected_endpoint_closed_by_error_received_still_sends_until_its_socket_is_gone(loop, run):
    # Stock asyncio drops writes after close() only on connected endpoints (CPython gh-156920's test).
    async def main():
        errors = []
        lost = loop.create_future()

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def error_received(self, exc):
                errors.append(exc)
                self.transport.close()

            def connection_lost(self, exc):
                lost.set_result(exc)

        tr, _ = await loop.create_datagram_endpoint(Proto, local_addr=(HOST, 0))
        addr = tr.get_extra_info("sockname")
        tr.sendto(b"\0" * 70000, addr)  # too big for UDP: EMSGSIZE -> error_received -> close()
        tr.sendto(b"\0" * 70000, addr)  # closing, socket still there: sent, fails, reported
        assert await lost is None
        return len(errors)

    assert run(main()) == 2


@pytest.mark.parametrize("bad", ["text", 123, None])
def test_sendto_refuses_what_is_not_bytes(loop, run, bad, recorder):
    async def main():
        tr, _ = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0))
        with pytest.raises(TypeError, match="bytes-like"):
            tr.sendto(bad, (HOST, 9))
        await close(tr)

    run(main())


def test_empty_datagram_follows_the_running_python(loop, run, recorder):
    async def main():
        s_tr, server = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0))
        c_tr, _ = await loop.create_datagram_endpoint(recorder,
                                                      remote_addr=s_tr.get_extra_info("sockname"))
        c_tr.sendto(b"")
        c_tr.sendto(b"marker")
        await server.wait_for(lambda: server.received and server.received[-1][0] == b"marker")
        datas = [d for d, _ in server.received]
        # 3.13 sends empty datagrams; 3.11/3.12 silently drop them.
        assert datas == ([b"", b"marker"] if sys.version_info >= (3, 13) else [b"marker"])
        await close(c_tr, s_tr)

    run(main())


def test_memoryview_and_bytearray_payloads(loop, run, recorder):
    async def main():
        s_tr, server = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0))
        addr = s_tr.get_extra_info("sockname")
        c_tr, _ = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0))
        c_tr.sendto(bytearray(b"ba"), addr)
        c_tr.sendto(memoryview(b"mv"), addr)
        await server.wait_for(lambda: len(server.received) == 2)
        assert [d for d, _ in server.received] == [b"ba", b"mv"]
        await close(c_tr, s_tr)

    run(main())


# ------------------------------------------------------------------------------------------ faults
def test_exception_in_datagram_received_goes_to_the_handler_and_the_loop_keeps_running(loop, run, recorder):
    async def main():
        contexts = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

        class Faulty(recorder):
            def datagram_received(self, data, addr):
                super().datagram_received(data, addr)
                if data == b"boom":
                    raise ZeroDivisionError("protocol bug")

        s_tr, server = await loop.create_datagram_endpoint(Faulty, local_addr=(HOST, 0))
        c_tr, _ = await loop.create_datagram_endpoint(recorder,
                                                      remote_addr=s_tr.get_extra_info("sockname"))
        c_tr.sendto(b"boom")
        await server.wait_for(lambda: server.received)
        await asyncio.sleep(0)
        c_tr.sendto(b"still alive")
        await server.wait_for(lambda: len(server.received) == 2)
        assert any(isinstance(ctx.get("exception"), ZeroDivisionError) for ctx in contexts)
        assert not s_tr.is_closing()
        await close(c_tr, s_tr)

    run(main())


def test_abort_calls_connection_lost_once(loop, run, recorder):
    async def main():
        tr, proto = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0))
        tr.abort()
        tr.abort()
        tr.close()
        assert await proto.lost is None
        await asyncio.sleep(0)
        assert proto.events == ["made", "lost"]

    run(main())


def test_pause_and_resume_reading(loop, run, recorder):
    async def main():
        s_tr, server = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0))
        c_tr, _ = await loop.create_datagram_endpoint(recorder,
                                                      remote_addr=s_tr.get_extra_info("sockname"))
        s_tr.pause_reading()
        assert not s_tr.is_reading()
        c_tr.sendto(b"held")
        for _ in range(5):
            await asyncio.sleep(0)
        assert server.received == []
        s_tr.resume_reading()
        await server.wait_for(lambda: server.received)
        assert server.received[0][0] == b"held"
        await close(c_tr, s_tr)

    run(main())


# ----------------------------------------------------------------------------------- bad arguments
def test_reuse_address_is_refused(loop, run):
    async def main():
        with pytest.raises(TypeError):
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(HOST, 0),
                                                reuse_address=True)

    run(main())


def test_sock_with_other_socket_options_is_refused(loop, run):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            with pytest.raises(ValueError, match="local_addr"):
                await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=sock, local_addr=(HOST, 0))

    run(main())


def test_stream_socket_is_refused(loop, run):
    async def main():
        with socket.socket() as sock:
            # each Python's own wording: 3.13 changed it (and accepts any non-stream socket)
            wording = "A datagram socket was expected" if sys.version_info >= (3, 13) else "A UDP Socket was expected"
            with pytest.raises(ValueError, match=wording):
                await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=sock)

    run(main())


@pytest.mark.parametrize("kwargs, exc", [
    ({}, ValueError),                                                   # no address, no family
    ({"local_addr": "not a tuple"}, TypeError),
    ({"local_addr": (HOST, 0, 0)}, TypeError),
    ({"local_addr": (HOST, 0), "family": socket.AF_UNIX}, TypeError),   # Unix wants a path string
])
def test_bad_addresses_are_refused(loop, run, kwargs, exc):
    async def main():
        with pytest.raises(exc):
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol, **kwargs)

    run(main())


def test_no_family_matches_both_addresses(loop, run):
    async def main():
        if not ipv6_available():
            pytest.skip("no IPv6 on this machine")
        with pytest.raises(ValueError, match="address information"):
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(HOST, 0),
                                                remote_addr=("::1", 9))

    run(main())


def test_allow_broadcast_and_reuse_port_set_their_options(loop, run, recorder):
    async def main():
        kwargs = {"allow_broadcast": True}
        if hasattr(socket, "SO_REUSEPORT"):
            kwargs["reuse_port"] = True
        tr, _ = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0), **kwargs)
        sock = tr.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        if "reuse_port" in kwargs:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        await close(tr)

    run(main())


def test_bind_failure_raises_and_leaks_nothing(loop, run, recorder):
    async def main():
        s_tr, _ = await loop.create_datagram_endpoint(recorder, local_addr=(HOST, 0))
        with pytest.raises(OSError):
            await loop.create_datagram_endpoint(recorder, local_addr=s_tr.get_extra_info("sockname"))
        await close(s_tr)

    run(main())


def test_protocol_factory_failure_closes_the_socket(loop, run):
    async def main():
        def factory():
            raise RuntimeError("factory failed")

        with pytest.raises(RuntimeError, match="factory failed"):
            await loop.create_datagram_endpoint(factory, local_addr=(HOST, 0))

    run(main())
