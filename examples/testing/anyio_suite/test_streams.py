"""An existing anyio suite: it knows nothing about multiloop.

``pytest --multiloop-backends=all`` replaces anyio's default ``anyio_backend`` with asyncio on each multiloop
backend (ids name the backend); sync tests run once.
"""

import anyio
import pytest

pytestmark = pytest.mark.anyio


async def test_tcp_echo_through_anyio_streams():
    async def serve(client):
        async with client:
            await client.send((await client.receive()).upper())

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"ping")
            assert await stream.receive() == b"PING"
        tg.cancel_scope.cancel()


async def test_memory_object_streams_and_task_groups():
    send, receive = anyio.create_memory_object_stream[int](10)
    async with anyio.create_task_group() as tg:
        async def produce():
            async with send:
                for i in range(5):
                    await send.send(i)

        tg.start_soon(produce)
        async with receive:
            assert [i async for i in receive] == [0, 1, 2, 3, 4]


async def test_move_on_after():
    with anyio.move_on_after(0.01) as scope:
        await anyio.sleep_forever()
    assert scope.cancelled_caught


def test_plain_function_runs_once():
    assert sorted([3, 1, 2]) == [1, 2, 3]
