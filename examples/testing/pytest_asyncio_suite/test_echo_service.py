"""An existing pytest-asyncio suite, written for stock asyncio: it knows nothing about multiloop.

``pytest --multiloop-backends=all`` runs each async test once per multiloop backend (the id names it); the
sync test runs once; the module-scoped server and the tests that share its loop keep one loop per backend.
"""

import asyncio

import pytest
import pytest_asyncio


async def handle_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def echo_server():
    server = await asyncio.start_server(handle_echo, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[:2]


@pytest.mark.asyncio(loop_scope="module")
async def test_echo_upper_cases_a_line(echo_server):
    reader, writer = await asyncio.open_connection(*echo_server)
    writer.write(b"hello\n")
    assert await reader.readline() == b"HELLO\n"
    writer.close()
    await writer.wait_closed()


@pytest.mark.asyncio(loop_scope="module")
async def test_two_clients_are_served_concurrently(echo_server):
    (r1, w1), (r2, w2) = [await asyncio.open_connection(*echo_server) for _ in range(2)]
    w2.write(b"second\n")
    w1.write(b"first\n")
    assert await r2.readline() == b"SECOND\n"
    assert await r1.readline() == b"FIRST\n"
    for w in (w1, w2):
        w.close()
        await w.wait_closed()


@pytest.mark.asyncio
async def test_timeouts_cancel_slow_work():
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await asyncio.Event().wait()


@pytest.mark.asyncio
async def test_subprocess_output():
    proc = await asyncio.create_subprocess_exec("echo", "from a child", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out == b"from a child\n" and proc.returncode == 0


def test_plain_function_runs_once():
    assert "".join(reversed("olleh")) == "hello"
