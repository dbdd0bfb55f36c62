"""Unix stream sockets: create_unix_server / create_unix_connection, stale socket cleanup, ``cleanup_socket``,
the Linux abstract namespace; on every backend."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid

import pytest


async def echo_once(loop, client_protocol, path=None, sock=None):
    transport, proto = await loop.create_unix_connection(client_protocol, path, sock=sock)
    transport.write(b"over unix")
    while len(proto.data) < 9:
        await asyncio.sleep(0)
    assert proto.data == b"over unix"
    assert transport.get_extra_info("socket").family == socket.AF_UNIX
    transport.close()
    await proto.lost


def test_unix_server_and_connection(loop, run, tmp_path, echo_protocol, client_protocol):
    path = str(tmp_path / "s.sock")

    async def main():
        server = await loop.create_unix_server(echo_protocol, path)
        assert server.sockets[0].getsockname() == path
        await echo_once(loop, client_protocol, path)
        server.close()
        await server.wait_closed()
        # cleanup_socket defaults to True from 3.13 on; before, stock asyncio leaves the file
        assert os.path.exists(path) is (sys.version_info < (3, 13))

    run(main())


def test_unix_server_accepts_pathlike(loop, run, tmp_path, echo_protocol, client_protocol):
    async def main():
        server = await loop.create_unix_server(echo_protocol, tmp_path / "p.sock")
        await echo_once(loop, client_protocol, tmp_path / "p.sock")
        server.close()
        await server.wait_closed()

    run(main())


def test_stale_socket_file_is_replaced(loop, run, tmp_path, echo_protocol, client_protocol):
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays behind, as after a crash

    async def main():
        server = await loop.create_unix_server(echo_protocol, path)
        await echo_once(loop, client_protocol, path)
        server.close()
        await server.wait_closed()

    run(main())


def test_a_regular_file_in_the_way_is_never_removed(loop, run, tmp_path, echo_protocol):
    path = tmp_path / "precious.txt"
    path.write_text("data")

    async def main():
        with pytest.raises(OSError, match="already in use"):
            await loop.create_unix_server(echo_protocol, str(path))
        assert path.read_text() == "data"

    run(main())


def test_cleanup_socket_false_leaves_the_file(loop, run, tmp_path, echo_protocol):
    path = str(tmp_path / "keep.sock")

    async def main():
        server = await loop.create_unix_server(echo_protocol, path, cleanup_socket=False)
        server.close()
        await server.wait_closed()
        assert os.path.exists(path)

    run(main())


def test_cleanup_does_not_unlink_a_socket_that_replaced_ours(loop, run, tmp_path, echo_protocol):
    path = str(tmp_path / "replaced.sock")

    async def main():
        server = await loop.create_unix_server(echo_protocol, path)
        os.unlink(path)
        other = socket.socket(socket.AF_UNIX)
        other.bind(path)  # someone else's socket now lives at the path
        server.close()
        await server.wait_closed()
        assert os.path.exists(path)
        other.close()

    run(main())


def test_unix_server_with_sock_cleans_up_its_file(loop, run, tmp_path, echo_protocol, client_protocol):
    path = str(tmp_path / "given.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)

    async def main():
        server = await loop.create_unix_server(echo_protocol, sock=sock, cleanup_socket=True)  # (3.13's default)
        await echo_once(loop, client_protocol, path)
        server.close()
        await server.wait_closed()
        assert not os.path.exists(path)

    run(main())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract namespace is Linux-only")
def test_abstract_namespace(loop, run, echo_protocol, client_protocol):
    name = "\0multiloop-test-" + uuid.uuid4().hex

    async def main():
        server = await loop.create_unix_server(echo_protocol, name)
        await echo_once(loop, client_protocol, name)
        server.close()
        await server.wait_closed()

    run(main())


def test_unix_connection_with_sock(loop, run, tmp_path, echo_protocol, client_protocol):
    path = str(tmp_path / "c.sock")

    async def main():
        server = await loop.create_unix_server(echo_protocol, path)
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        await echo_once(loop, client_protocol, sock=sock)
        server.close()
        await server.wait_closed()

    run(main())


def test_unix_connection_to_a_missing_path(loop, run, tmp_path, client_protocol):
    async def main():
        with pytest.raises(FileNotFoundError):
            await loop.create_unix_connection(client_protocol, str(tmp_path / "nothing.sock"))

    run(main())


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"path": "x", "server_hostname": "h"}, ValueError, "server_hostname is only meaningful with ssl"),
    ({"path": "x", "ssl_handshake_timeout": 1}, ValueError, "ssl_handshake_timeout is only meaningful"),
    ({}, ValueError, "no path and sock were specified"),
])
def test_unix_connection_argument_errors(loop, run, kwargs, exc, message, client_protocol):
    async def main():
        with pytest.raises(exc, match=message):
            await loop.create_unix_connection(client_protocol, **kwargs)

    run(main())


def test_unix_server_argument_errors(loop, run, echo_protocol):
    async def main():
        with pytest.raises(ValueError, match="path was not specified, and no sock specified"):
            await loop.create_unix_server(echo_protocol)
        with pytest.raises(TypeError, match="ssl argument must be an SSLContext"):
            await loop.create_unix_server(echo_protocol, "x", ssl=True)
        with socket.socket() as tcp:
            with pytest.raises(ValueError, match="A UNIX Domain Stream Socket was expected"):
                await loop.create_unix_server(echo_protocol, sock=tcp)

    run(main())


def test_unix_streams_api(loop, run, tmp_path, aclose):
    path = str(tmp_path / "streams.sock")

    async def handle(reader, writer):
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_unix_server(handle, path)
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"line\n")
        assert await reader.readline() == b"LINE\n"
        assert await reader.read() == b""
        await aclose(writer, server)

    run(main())
