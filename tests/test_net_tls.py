"""TLS on every backend: ssl= connections and servers, start_tls, extra info, timeouts, failures, sendfile.

Certificates are made for the session with the ``openssl`` command-line tool: a throwaway CA and a server
certificate for ``localhost``, 127.0.0.1 and ::1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading

import pytest

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

HOST = "127.0.0.1"


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, cwd=d, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=multiloop test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\n"
                               "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return d


@pytest.fixture
def server_ctx(certs):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
    return ctx


@pytest.fixture
def client_ctx(certs):
    return ssl.create_default_context(cafile=str(certs / "ca.pem"))


async def tls_pair(loop, recorder, server_ctx, client_ctx, **client_kw):
    """A TLS server with one connected client: (server, server protocol, client transport, client proto)."""
    server_protos: list = []

    def factory():
        server_protos.append(recorder())
        return server_protos[-1]

    server = await loop.create_server(factory, HOST, 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_kw.setdefault("server_hostname", "localhost")
    tr, cp = await loop.create_connection(recorder, HOST, port, ssl=client_ctx, **client_kw)
    await server_protos[0].made
    return server, server_protos[0], tr, cp


async def shut(server, *transports):
    for tr in transports:
        tr.close()
    server.close()
    await server.wait_closed()


def test_tls_round_trip_both_directions(loop, run, server_ctx, client_ctx, recorder):
    async def main():
        server, sp, tr, cp = await tls_pair(loop, recorder, server_ctx, client_ctx)
        tr.write(b"ping" * 10000)
        await sp.until(40000)
        sp.transport.write(b"pong")
        await cp.until(4)
        assert bytes(sp.data) == b"ping" * 10000 and bytes(cp.data) == b"pong"
        tr.close()
        assert await cp.lost is None
        await sp.lost
        await shut(server)

    run(main())


def test_tls_transport_extra_info(loop, run, server_ctx, client_ctx, recorder):
    async def main():
        server, sp, tr, cp = await tls_pair(loop, recorder, server_ctx, client_ctx)
        assert tr.get_extra_info("sslcontext") is client_ctx
        assert isinstance(tr.get_extra_info("ssl_object"), ssl.SSLObject)
        assert dict(x[0] for x in tr.get_extra_info("peercert")["subject"])["commonName"] == "localhost"
        cipher = tr.get_extra_info("cipher")
        assert isinstance(cipher, tuple) and len(cipher) == 3
        assert tr.get_extra_info("compression") is None
        assert tr.get_extra_info("peername")[1] == server.sockets[0].getsockname()[1]
        assert tr.get_extra_info("sockname")[0] == HOST
        assert tr.get_extra_info("socket").fileno() >= 0
        assert sp.transport.get_extra_info("peercert") is None  # no client certificate asked for
        assert tr.get_extra_info("no such key", "dflt") == "dflt"
        await shut(server, tr)
        await cp.lost

    run(main())


def test_untrusted_certificate_fails_the_handshake(loop, run, server_ctx, recorder):
    async def main():
        server = await loop.create_server(recorder, HOST, 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        untrusting = ssl.create_default_context()  # system CAs only: our throwaway CA is unknown
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.create_connection(recorder, HOST, port, ssl=untrusting,
                                         server_hostname="localhost")
        await shut(server)

    loop.set_exception_handler(lambda lp, ctx: None)  # the server side logs its failed handshake
    run(main())


def test_wrong_hostname_fails_the_handshake(loop, run, server_ctx, client_ctx, recorder):
    async def main():
        server = await loop.create_server(recorder, HOST, 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ssl.SSLCertVerificationError, match="(?i)hostname|match"):
            await loop.create_connection(recorder, HOST, port, ssl=client_ctx,
                                         server_hostname="not-the-server.example")
        await shut(server)

    loop.set_exception_handler(lambda lp, ctx: None)
    run(main())


def test_handshake_timeout_aborts_the_connection(loop, run, client_ctx, recorder):
    async def main():
        # A TCP listener that accepts but never speaks TLS.
        listener = socket.socket()
        listener.bind((HOST, 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        try:
            with pytest.raises(ConnectionAbortedError, match="handshake"):
                await loop.create_connection(recorder, HOST, port, ssl=client_ctx,
                                             server_hostname="localhost", ssl_handshake_timeout=0.05)
        finally:
            conn, _ = await loop.sock_accept(listener)
            conn.close()
            listener.close()

    run(main())


def test_shutdown_timeout_closes_even_if_the_peer_never_answers(loop, run, server_ctx, client_ctx, recorder):
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen()
    port = listener.getsockname()[1]
    release = threading.Event()

    def silent_peer():
        # Completes the handshake, then neither reads nor answers close_notify until released.
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True):
            release.wait(10)

    peer = threading.Thread(target=silent_peer)
    peer.start()

    async def main():
        tr, cp = await loop.create_connection(recorder, HOST, port, ssl=client_ctx,
                                              server_hostname="localhost", ssl_shutdown_timeout=0.05)
        tr.close()
        await cp.lost  # reached because of the timeout: the peer never sends close_notify
        assert tr.is_closing()

    try:
        run(main())
    finally:
        release.set()
        peer.join()
        listener.close()


@pytest.mark.parametrize("name", ["ssl_handshake_timeout", "ssl_shutdown_timeout"])
def test_non_positive_tls_timeouts_are_refused(loop, run, server_ctx, client_ctx, name):
    async def main():
        server = await loop.create_server(asyncio.Protocol, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ValueError, match=name):
            await loop.create_connection(asyncio.Protocol, HOST, port, ssl=client_ctx,
                                         server_hostname="localhost", **{name: 0})
        await shut(server)

    run(main())


def test_peer_reset_mid_tls_reports_connection_lost(loop, run, server_ctx, client_ctx, recorder):
    async def main():
        server, sp, tr, cp = await tls_pair(loop, recorder, server_ctx, client_ctx)
        tr.write(b"hello")
        await sp.until(5)
        # Make the server's close a reset (SO_LINGER 0) and abort: the client sees ECONNRESET, or EOF.
        raw = sp.transport.get_extra_info("socket")
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sp.transport.abort()
        exc = await cp.lost
        assert exc is None or isinstance(exc, (ConnectionError, ssl.SSLError)), exc
        assert tr.is_closing()
        await shut(server)

    loop.set_exception_handler(lambda lp, ctx: None)
    run(main())


def test_start_tls_upgrades_a_plain_connection(loop, run, server_ctx, client_ctx, recorder):
    async def main():
        upgraded = loop.create_future()

        class Server(recorder):
            def data_received(self, data):
                super().data_received(data)
                if bytes(self.data) == b"STARTTLS\n":
                    self.data.clear()
                    self.transport.write(b"GO\n")
                    upgraded.set_result(loop.create_task(
                        loop.start_tls(self.transport, self, server_ctx, server_side=True)))

        sp = Server()
        server = await loop.create_server(lambda: sp, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        tr, cp = await loop.create_connection(recorder, HOST, port)
        tr.write(b"STARTTLS\n")
        await cp.until(3)
        assert bytes(cp.data) == b"GO\n"
        cp.data.clear()
        tls_tr = await loop.start_tls(tr, cp, client_ctx, server_hostname="localhost")
        server_tls = await (await upgraded)
        assert tls_tr.get_extra_info("peercert") is not None
        assert tls_tr.get_protocol() is cp and tr.get_protocol() is not cp
        tls_tr.write(b"secret")
        await sp.until(6)
        assert bytes(sp.data) == b"secret"
        tls_tr.close()
        await cp.lost
        server_tls.close()
        await shut(server)

    run(main())


def test_start_tls_sends_plain_bytes_written_before_the_upgrade_first(loop, run, server_ctx, client_ctx, recorder):
    """A large plain write still buffered when start_tls is called reaches the peer before the handshake."""
    async def main():
        payload = os.urandom(4 * 1024 * 1024)
        after = recorder()
        server_tls = loop.create_future()

        class PlainReader(asyncio.BufferedProtocol):
            # Reads exactly the plain payload (never a byte more), then upgrades.
            def __init__(self):
                self.buf = bytearray(len(payload))
                self.pos = 0

            def connection_made(self, transport):
                self.transport = transport

            def get_buffer(self, sizehint):
                return memoryview(self.buf)[self.pos:]

            def buffer_updated(self, nbytes):
                self.pos += nbytes
                if self.pos == len(payload):
                    self.transport.pause_reading()
                    server_tls.set_result(loop.create_task(
                        loop.start_tls(self.transport, after, server_ctx, server_side=True)))

            def connection_lost(self, exc):
                pass

        reader = PlainReader()
        server = await loop.create_server(lambda: reader, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        tr, cp = await loop.create_connection(recorder, HOST, port)
        tr.write(payload)
        assert tr.get_write_buffer_size() > 0  # the kernel took only part of it
        tls_tr = await loop.start_tls(tr, cp, client_ctx, server_hostname="localhost")
        server_tr = await (await server_tls)
        assert bytes(reader.buf) == payload
        tls_tr.write(b"after")
        await after.until(5)
        assert bytes(after.data) == b"after"
        tls_tr.close()
        await cp.lost
        server_tr.close()
        await shut(server)

    run(main())


def test_server_stream_start_tls_uses_a_client_hello_already_buffered(loop, run, server_ctx, client_ctx):
    """The client's first TLS bytes arrived (into the server's StreamReader) before the server called
    start_tls: the handshake must use them, not wait for them again (CPython gh-142352)."""
    async def main():
        async def handler(reader, writer):
            while not reader._buffer:  # asyncio's StreamReader buffer: wait until the ClientHello is in it
                await asyncio.sleep(0.005)
            await writer.start_tls(server_ctx)
            assert await reader.readline() == b"ping\n"
            writer.write(b"pong\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handler, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(HOST, port)
        await writer.start_tls(client_ctx, server_hostname="localhost")
        writer.write(b"ping\n")
        assert await reader.readline() == b"pong\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_start_tls_gives_up_when_the_peer_never_reads_the_plain_data(loop, run, client_ctx, recorder):
    async def main():
        sp = recorder()
        server = await loop.create_server(lambda: sp, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        tr, cp = await loop.create_connection(recorder, HOST, port)
        await sp.made
        sp.transport.pause_reading()  # the peer stops reading
        tr.write(os.urandom(16 * 1024 * 1024))
        assert tr.get_write_buffer_size() > 0
        with pytest.raises(ConnectionAbortedError, match="handshake"):
            await loop.start_tls(tr, cp, client_ctx, server_hostname="localhost", ssl_handshake_timeout=0.05)
        assert tr.is_closing()
        await cp.lost
        await shut(server, sp.transport)  # paused, it would never notice the reset by itself
        await sp.lost

    run(main())


def test_start_tls_refuses_what_is_not_an_sslcontext(loop, run):
    async def main():
        with pytest.raises(TypeError, match="SSLContext"):
            await loop.start_tls(None, None, None)
        with pytest.raises(TypeError, match="SSLContext"):
            await loop.start_tls(None, None, object())

    run(main())


def test_start_tls_refuses_an_unsupported_transport(loop, run, client_ctx):
    async def main():
        tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(HOST, 0))
        try:
            with pytest.raises(TypeError, match="not supported by start_tls"):
                await loop.start_tls(tr, asyncio.Protocol(), client_ctx)
            with pytest.raises(TypeError, match="not supported by start_tls"):
                await loop.start_tls(object(), asyncio.Protocol(), client_ctx)
        finally:
            tr.close()
            await asyncio.sleep(0)

    run(main())


def test_start_tls_failure_closes_the_transport(loop, run, server_ctx, recorder):
    async def main():
        sp_made = loop.create_future()

        class Server(recorder):
            def connection_made(self, transport):
                super().connection_made(transport)
                sp_made.set_result(loop.create_task(
                    loop.start_tls(transport, self, server_ctx, server_side=True)))

        server = await loop.create_server(lambda: Server(), HOST, 0)
        port = server.sockets[0].getsockname()[1]
        tr, cp = await loop.create_connection(recorder, HOST, port)
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.start_tls(tr, cp, ssl.create_default_context(), server_hostname="localhost")
        assert tr.is_closing()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await (await sp_made)
        await shut(server)

    loop.set_exception_handler(lambda lp, ctx: None)
    run(main())


def test_stream_writer_start_tls(loop, run, server_ctx, client_ctx, aclose):
    async def main():
        async def handle(reader, writer):
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"GO\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            assert writer.get_extra_info("ssl_object") is not None
            writer.write(b"tls:" + await reader.readline())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        writer.write(b"secret\n")
        assert await reader.read() == b"tls:secret\n"
        await aclose(writer, server)

    run(main())


def test_asyncio_streams_over_tls(loop, run, server_ctx, client_ctx, aclose):
    async def main():
        async def handle(reader, writer):
            writer.write(await reader.readexactly(100000))
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, HOST, 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(HOST, port, ssl=client_ctx, server_hostname="localhost")
        payload = os.urandom(100000)
        writer.write(payload)
        assert await reader.read() == payload
        await aclose(writer, server)

    run(main())


def test_unix_socket_tls(loop, run, server_ctx, client_ctx, tmp_path, recorder):
    async def main():
        path = str(tmp_path / "tls.sock")
        sp = recorder()
        server = await loop.create_unix_server(lambda: sp, path, ssl=server_ctx)
        tr, cp = await loop.create_unix_connection(recorder, path, ssl=client_ctx,
                                                   server_hostname="localhost")
        tr.write(b"over unix")
        await sp.until(9)
        assert bytes(sp.data) == b"over unix"
        await shut(server, tr)
        await cp.lost

    run(main())


# ------------------------------------------------------------------------------- sendfile over TLS
@pytest.fixture
def data_file(tmp_path):
    data = os.urandom(700 * 1024 + 3)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        yield f, data


def test_sendfile_over_tls_uses_the_fallback(loop, run, server_ctx, client_ctx, data_file, recorder):
    f, data = data_file

    async def main():
        server, sp, tr, cp = await tls_pair(loop, recorder, server_ctx, client_ctx)
        tr.set_write_buffer_limits(high=16 * 1024)  # exercise pause/resume during the copy
        tr.write(b"PRE")
        sent = await loop.sendfile(tr, f, 1000, len(data) - 2000)
        tr.write(b"POST")
        assert sent == len(data) - 2000
        assert f.tell() == len(data) - 1000
        assert tr.get_protocol() is cp  # the application's protocol is back
        await sp.until(len(data) - 2000 + 7)
        assert bytes(sp.data) == b"PRE" + data[1000:-1000] + b"POST"
        await shut(server, tr)
        await cp.lost

    run(main())


def test_sendfile_over_tls_without_fallback_is_refused(loop, run, server_ctx, client_ctx, data_file, recorder):
    f, _ = data_file

    async def main():
        server, sp, tr, cp = await tls_pair(loop, recorder, server_ctx, client_ctx)
        with pytest.raises(RuntimeError, match="fallback is disabled"):
            await loop.sendfile(tr, f, fallback=False)
        assert f.tell() == 0
        await shut(server, tr)
        await cp.lost

    run(main())


def test_sendfile_over_tls_to_a_peer_that_closes_midway(loop, run, server_ctx, client_ctx, data_file, recorder):
    f, data = data_file

    async def main():
        server, sp, tr, cp = await tls_pair(loop, recorder, server_ctx, client_ctx)
        tr.set_write_buffer_limits(high=4096)
        # The peer resets the connection (SO_LINGER 0: RST, not FIN). A FIN would only start the TLS shutdown,
        # during which asyncio's SSLProtocol drops further writes without an error (stock asyncio too), and
        # the sendfile could then finish "successfully" before the connection is reported lost.
        sp.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                         struct.pack("ii", 1, 0))

        def close_after_some(data_, _orig=sp.data_received):
            _orig(data_)
            if len(sp.data) >= 4096 and not sp.transport.is_closing():
                sp.transport.abort()

        sp.data_received = close_after_some
        with pytest.raises(ConnectionError):
            await loop.sendfile(tr, f)
        assert 0 < f.tell() < len(data)
        await cp.lost
        await shut(server)

    loop.set_exception_handler(lambda lp, ctx: None)
    run(main())
