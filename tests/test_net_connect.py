"""create_connection / create_server / connect_accepted_socket arguments, happy eyeballs, error reports, on
every backend."""

from __future__ import annotations

import asyncio
import errno
import gc
import socket
import weakref

import pytest

from multiloop.net import connect as connect_mod

HAS_IPV6 = False
if socket.has_ipv6:
    try:
        with socket.socket(socket.AF_INET6) as _s:
            _s.bind(("::1", 0))
        HAS_IPV6 = True
    except OSError:
        pass
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback here")


async def roundtrip(transport, proto, payload=b"ping"):
    transport.write(payload)
    while len(proto.data) < len(payload):
        await asyncio.sleep(0)
    assert bytes(proto.data) == payload


def refused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound then closed, never listened: connecting is refused
    return port


def test_create_connection_to_a_tcp_server(loop, run, echo_protocol, client_protocol):
    async def main():
        server = await loop.create_server(echo_protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(client_protocol, "127.0.0.1", port)
        assert transport.get_extra_info("peername") == ("127.0.0.1", port)
        await roundtrip(transport, proto)
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(main())


def test_create_connection_refused(loop, run, client_protocol):
    async def main():
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(client_protocol, "127.0.0.1", refused_port())

    run(main())


def test_create_connection_all_errors_raises_an_exception_group(loop, run, client_protocol):
    async def main():
        with pytest.raises(ExceptionGroup) as info:
            await loop.create_connection(client_protocol, "127.0.0.1", refused_port(), all_errors=True)
        assert all(isinstance(e, ConnectionRefusedError) for e in info.value.exceptions)

    run(main())


def test_create_connection_reports_every_address_when_errors_differ(loop, run, client_protocol):
    async def main():
        port = refused_port()
        infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                 (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]

        async def fake_getaddrinfo(*args, **kwargs):
            return infos

        loop.getaddrinfo = fake_getaddrinfo
        real_connect = loop.sock_connect

        async def sock_connect(sock, address):
            if address[0] == "127.0.0.2":
                raise OSError(errno.EHOSTUNREACH, "unreachable")
            await real_connect(sock, address)

        loop.sock_connect = sock_connect
        with pytest.raises(OSError, match="Multiple exceptions: .*unreachable"):
            await loop.create_connection(client_protocol, "example.invalid", port)

    run(main())


def test_create_connection_with_local_addr(loop, run, echo_protocol, client_protocol):
    async def main():
        server = await loop.create_server(echo_protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(client_protocol, "127.0.0.1", port, local_addr=("127.0.0.1", 0))
        assert transport.get_extra_info("sockname")[0] == "127.0.0.1"
        transport.close()
        await proto.lost
        with pytest.raises(OSError, match="error while attempting to bind"):
            taken = transport.get_extra_info("sockname")  # closed now; bind a live one to collide
            holder = socket.socket()
            holder.bind(("127.0.0.1", 0))
            try:
                await loop.create_connection(client_protocol, "127.0.0.1", port, local_addr=holder.getsockname())
            finally:
                holder.close()
        del taken
        server.close()
        await server.wait_closed()

    run(main())


def test_create_connection_with_sock(loop, run, echo_protocol, client_protocol):
    async def main():
        server = await loop.create_server(echo_protocol, "127.0.0.1", 0)
        sock = socket.create_connection(server.sockets[0].getsockname())
        transport, proto = await loop.create_connection(client_protocol, sock=sock)
        assert sock.gettimeout() == 0  # made non-blocking
        await roundtrip(transport, proto)
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(main())


@pytest.mark.parametrize("kwargs, message", [
    ({"host": "127.0.0.1", "port": 1, "server_hostname": "x"}, "server_hostname is only meaningful with ssl"),
    ({"host": "127.0.0.1", "port": 1, "ssl_handshake_timeout": 1}, "ssl_handshake_timeout is only meaningful"),
    ({"host": "127.0.0.1", "port": 1, "ssl_shutdown_timeout": 1}, "ssl_shutdown_timeout is only meaningful"),
    ({}, "host and port was not specified and no sock specified"),
    ({"port": 0, "ssl": True}, "You must set server_hostname when using ssl without a host"),
])
def test_create_connection_argument_errors(loop, run, kwargs, message, client_protocol):
    async def main():
        with pytest.raises(ValueError, match=message):
            await loop.create_connection(client_protocol, **kwargs)

    run(main())


def test_create_connection_rejects_sock_with_host_and_datagram_sock(loop, run, client_protocol):
    async def main():
        with socket.socket() as s:
            with pytest.raises(ValueError, match="can not be specified at the same time"):
                await loop.create_connection(client_protocol, "127.0.0.1", 1, sock=s)
        with socket.socket(type=socket.SOCK_DGRAM) as s:
            with pytest.raises(ValueError, match="A Stream Socket was expected"):
                await loop.create_connection(client_protocol, sock=s)

    run(main())


def test_interleave_alternates_families():
    v6 = [(socket.AF_INET6, 1, 6, "", (f"::{i}", 80, 0, 0)) for i in range(1, 4)]
    v4 = [(socket.AF_INET, 1, 6, "", (f"10.0.0.{i}", 80)) for i in range(1, 3)]
    infos = v6 + v4
    assert connect_mod.interleave(infos, 1) == [v6[0], v4[0], v6[1], v4[1], v6[2]]
    assert connect_mod.interleave(infos, 2) == [v6[0], v6[1], v4[0], v6[2], v4[1]]


def test_happy_eyeballs_moves_on_after_the_delay_and_closes_the_loser(loop, run, echo_protocol, client_protocol):
    async def main():
        server = await loop.create_server(echo_protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),
                 (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        async def fake_getaddrinfo(*args, **kwargs):
            return infos

        loop.getaddrinfo = fake_getaddrinfo
        real_connect = loop.sock_connect
        hanging = []

        async def sock_connect(sock, address):
            if address[0] == "127.0.0.2":  # a blackholed address: never answers
                hanging.append(sock)
                await loop.create_future()
            await real_connect(sock, address)

        loop.sock_connect = sock_connect
        transport, proto = await loop.create_connection(client_protocol, "example.invalid", port,
                                                        happy_eyeballs_delay=0.01)
        assert transport.get_extra_info("peername") == ("127.0.0.1", port)
        assert hanging and hanging[0].fileno() == -1  # the losing attempt's socket was closed
        await roundtrip(transport, proto)
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(main())


def test_happy_eyeballs_starts_the_next_attempt_at_once_when_one_fails(loop, run, echo_protocol, client_protocol):
    async def main():
        server = await loop.create_server(echo_protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", refused_port())),
                 (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        async def fake_getaddrinfo(*args, **kwargs):
            return infos

        loop.getaddrinfo = fake_getaddrinfo
        # A delay far longer than the test timeout: only "failure starts the next one" can pass.
        transport, proto = await loop.create_connection(client_protocol, "example.invalid", port,
                                                        happy_eyeballs_delay=3600)
        assert transport.get_extra_info("peername")[1] == port
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(main())


def test_happy_eyeballs_all_failing_reports_all_errors(loop, run, client_protocol):
    async def main():
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(client_protocol, "127.0.0.1", refused_port(), happy_eyeballs_delay=0.01)

    run(main())


def test_create_server_port_zero_and_host_list_binds_each_once(loop, run, echo_protocol):
    async def main():
        server = await loop.create_server(echo_protocol, ["127.0.0.1", "127.0.0.1"], 0)
        assert len(server.sockets) == 1
        server.close()
        await server.wait_closed()

    run(main())


@needs_ipv6
def test_create_server_on_all_families_sets_ipv6_only(loop, run, echo_protocol, client_protocol):
    async def main():
        server = await loop.create_server(echo_protocol, ["127.0.0.1", "::1"], 0)
        families = sorted(s.family for s in server.sockets)
        assert families == sorted([socket.AF_INET, socket.AF_INET6])
        for s in server.sockets:
            if s.family == socket.AF_INET6:
                assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(client_protocol, "::1", server.sockets[1].getsockname()[1])
        await roundtrip(transport, proto)
        transport.close()
        await proto.lost
        del port
        server.close()
        await server.wait_closed()

    run(main())


def test_create_server_family_and_socket_options(loop, run, echo_protocol):
    async def main():
        server = await loop.create_server(echo_protocol, "127.0.0.1", 0, family=socket.AF_INET, reuse_port=True,
                                          keep_alive=True, backlog=5)
        sock = server.sockets[0]
        assert sock.family == socket.AF_INET
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)  # default on POSIX
        server.close()
        await server.wait_closed()

    run(main())


def test_create_server_with_sock(loop, run, echo_protocol, client_protocol):
    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = await loop.create_server(echo_protocol, sock=sock)
        transport, proto = await loop.create_connection(client_protocol, *sock.getsockname())
        await roundtrip(transport, proto)
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()
        assert sock.fileno() == -1  # the server closes the socket it was given

    run(main())


def test_create_server_bind_error_names_the_address(loop, run, echo_protocol):
    async def main():
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        try:
            with pytest.raises(OSError, match="error while attempting to bind on address") as info:
                await loop.create_server(echo_protocol, "127.0.0.1", holder.getsockname()[1], reuse_address=False)
            assert info.value.errno == errno.EADDRINUSE
        finally:
            holder.close()

    run(main())


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"host": "127.0.0.1", "port": 0, "ssl": True}, TypeError, "ssl argument must be an SSLContext or None"),
    ({"host": "127.0.0.1", "port": 0, "ssl_handshake_timeout": 1}, ValueError, "only meaningful with ssl"),
    ({"host": "127.0.0.1", "port": 0, "ssl_shutdown_timeout": 1}, ValueError, "only meaningful with ssl"),
    ({}, ValueError, "Neither host/port nor sock were specified"),
])
def test_create_server_argument_errors(loop, run, kwargs, exc, message, echo_protocol):
    async def main():
        with pytest.raises(exc, match=message):
            await loop.create_server(echo_protocol, **kwargs)

    run(main())


def test_connect_accepted_socket(loop, run, echo_protocol):
    async def main():
        listener = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        listener.close()
        transport, proto = await loop.connect_accepted_socket(echo_protocol, accepted)
        client.setblocking(False)
        await loop.sock_sendall(client, b"accepted")
        assert await loop.sock_recv(client, 100) == b"accepted"
        transport.close()
        client.close()
        with socket.socket(type=socket.SOCK_DGRAM) as udp:
            with pytest.raises(ValueError, match="A Stream Socket was expected"):
                await loop.connect_accepted_socket(echo_protocol, udp)
        await asyncio.sleep(0)

    run(main())


class _Marker:
    """Hung on an exception: its weak reference dies when the exception does."""


@pytest.mark.parametrize("how", ["sock_connect", "create_connection", "happy_eyeballs", "all_errors"])
def test_a_failed_connection_leaves_its_exception_in_no_reference_cycle(loop, run, how):
    # The exception's traceback holds the frames it went through; a frame that still holds the exception
    # (through a future or an error list) makes a cycle that only the garbage collector can free, keeping
    # everything those frames hold alive until then (CPython gh-124859; anyio's happy eyeballs test).
    port = refused_port()

    async def attempt():
        if how == "sock_connect":
            with socket.socket() as sock:
                sock.setblocking(False)
                await loop.sock_connect(sock, ("127.0.0.1", port))
        else:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, all_errors=how == "all_errors",
                                         happy_eyeballs_delay=0.25 if how == "happy_eyeballs" else None)

    async def main():
        try:
            await attempt()
        except (OSError, ExceptionGroup) as exc:
            marker = _Marker()
            exc.marker = marker
            return weakref.ref(marker)
        raise AssertionError("the connection did not fail")

    gc.collect()
    gc.disable()
    try:
        ref = run(main())
        loop.run_until_complete(asyncio.sleep(0))
        assert ref() is None, "the exception is kept alive by a reference cycle"
    finally:
        gc.enable()


@pytest.mark.parametrize("all_errors", [False, True])
def test_no_attempt_error_at_all_is_a_timeout_not_an_index_error(all_errors):
    # CPython gh-135836: happy eyeballs can end with no winner and no OSError recorded (every attempt cancelled).
    from multiloop.net.connect import connection_error

    exc = connection_error([], all_errors)
    assert isinstance(exc, TimeoutError) and str(exc) == "create_connection failed"
