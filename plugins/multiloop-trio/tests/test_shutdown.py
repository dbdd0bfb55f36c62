"""Leaving the bridge never deadlocks: pending tasks, Ctrl-C, callbacks that raise, trio cancellation while
asyncio I/O is in flight, tasks that ignore cancellation, loop.stop()."""

from __future__ import annotations

import asyncio
import signal

import pytest
import trio
from multiloop_trio import aio_as_trio, open_loop, trio_as_aio

import multiloop


def test_pending_asyncio_tasks_are_cancelled_and_awaited_on_exit():
    log = []

    async def forever(name):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # the loop still runs during shutdown
            log.append(name)
            raise

    async def main():
        async with open_loop() as loop:
            loop.create_task(forever("a"))
            loop.create_task(forever("b"))
            await trio.sleep(0.01)

    trio.run(main)
    assert sorted(log) == ["a", "b"]


def test_task_ignoring_cancellation_is_abandoned_after_shutdown_timeout():
    reported = []

    async def stubborn():
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass  # refuses to stop

    async def main():
        async with open_loop(shutdown_timeout=0.05) as loop:
            loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx["message"]))
            loop.create_task(stubborn())
            await trio.sleep(0.01)

    trio.run(main)
    assert any("abandoned" in m for m in reported)


def test_keyboard_interrupt_in_asyncio_code_leaves_open_loop():
    cleaned = []

    async def other():
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append("other task")

    async def interrupted():
        asyncio.get_running_loop().create_task(other())
        await asyncio.sleep(0)
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while asyncio code runs
        await asyncio.sleep(3600)

    async def main():
        async with open_loop():
            await aio_as_trio(interrupted)()

    with pytest.raises(KeyboardInterrupt):
        trio.run(main)
    assert cleaned == ["other task"]


def test_keyboard_interrupt_raised_by_an_asyncio_task_not_awaited_by_trio():
    async def bomb():
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    async def main():
        async with open_loop() as loop:
            loop.create_task(bomb())
            await trio.sleep_forever()  # the failure cancels the body

    with pytest.raises(KeyboardInterrupt):
        trio.run(main)


def test_ctrl_c_under_multiloop_run_cancels_main_then_raises():
    cancelled = []

    async def main():
        asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGINT)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(KeyboardInterrupt):
        multiloop.run(main(), backend="trio")
    assert cancelled == [True]


def test_exception_from_a_callback_goes_to_the_handler_and_the_loop_goes_on():
    seen = []

    def bad():
        raise ValueError("callback")

    async def aio_main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, ctx: seen.append(type(ctx["exception"])))
        loop.call_soon(bad)
        await asyncio.sleep(0.001)
        return "still running"

    async def main():
        async with open_loop():
            return await aio_as_trio(aio_main)()

    assert trio.run(main) == "still running"
    assert seen == [ValueError]


def test_system_exit_from_a_callback_leaves_open_loop():
    async def main():
        async with open_loop() as loop:
            loop.call_soon(lambda: (_ for _ in ()).throw(SystemExit(3)))
            await trio.sleep_forever()

    with pytest.raises(SystemExit) as info:
        trio.run(main)
    assert info.value.code == 3


def test_trio_cancellation_while_asyncio_io_is_in_flight():
    async def silent_server_and_reader():
        accepted = []

        async def handler(reader, writer):
            accepted.append(writer)
            await reader.read()  # waits for EOF

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await reader.read(100)  # the server never writes: parked on I/O
        finally:
            writer.close()
            await writer.wait_closed()
            for w in accepted:
                w.close()
            server.close()
            await server.wait_closed()

    async def main():
        async with open_loop():
            with trio.move_on_after(0.05) as scope:
                await aio_as_trio(silent_server_and_reader)()
            return scope.cancelled_caught

    assert trio.run(main) is True


def test_outer_trio_cancellation_lets_asyncio_tasks_finish_their_io():
    closed = []

    connected = trio.Event()

    async def client(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connected.set()  # trio.Event.set is synchronous: fine from asyncio code on the same trio run
        try:
            await reader.read(100)
        finally:
            writer.close()
            await writer.wait_closed()  # needs I/O after the trio side was cancelled
            closed.append("client")

    async def main():
        listener = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listener[0].socket.getsockname()[1]
        streams = []
        async with listener[0]:
            with trio.move_on_after(0.05):
                async with open_loop() as loop:
                    loop.create_task(client(port))
                    streams.append(await listener[0].accept())  # kept open: the client sees no EOF
                    await connected.wait()
                    await trio.sleep_forever()
            for stream in streams:
                await stream.aclose()

    trio.run(main)
    assert closed == ["client"]


def test_loop_stop_inside_open_loop_ends_the_block_quietly():
    async def main():
        async with open_loop() as loop:
            loop.call_soon(loop.stop)
            await trio.sleep_forever()
        return "left"

    assert trio.run(main) == "left"


def test_trio_code_still_running_under_an_asyncio_task_is_cancelled_on_exit():
    log = []

    async def trio_forever():
        try:
            await trio.sleep_forever()
        finally:
            log.append("trio side ended")

    async def main():
        async with open_loop() as loop:
            loop.create_task(trio_as_aio(trio_forever)())
            await trio.sleep(0.01)

    trio.run(main)
    assert log == ["trio side ended"]
