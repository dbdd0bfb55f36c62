"""asyncio inside a running trio program: open_loop, and the adapters in both directions."""

from __future__ import annotations

import asyncio
import contextvars

import multiloop_trio
import pytest
import sniffio
import trio
from multiloop_trio import aio_as_trio, open_loop, trio_as_aio


async def aio_library(x=None):
    await asyncio.sleep(0)
    return sniffio.current_async_library(), x


async def trio_library(x=None):
    await trio.sleep(0)
    return sniffio.current_async_library(), x


def test_open_loop_gives_the_running_asyncio_loop():
    async def main():
        async with open_loop() as loop:
            assert loop.is_running() and loop.backend == "trio"
            assert asyncio.get_running_loop() is loop
            return loop

    loop = trio.run(main)
    assert loop.is_closed()


def test_aio_as_trio_returns_the_result_and_sniffio_says_asyncio():
    async def main():
        async with open_loop():
            inside = await aio_as_trio(aio_library)(5)
            return inside, sniffio.current_async_library()

    assert trio.run(main) == (("asyncio", 5), "trio")


def test_aio_as_trio_as_decorator_with_keyword_arguments():
    @aio_as_trio
    async def add(a, *, b):
        await asyncio.sleep(0)
        return a + b

    async def main():
        async with open_loop():
            return await add(1, b=2)

    assert trio.run(main) == 3


def test_aio_as_trio_accepts_a_coroutine_or_future():
    async def main():
        async with open_loop() as loop:
            fut = loop.create_future()
            loop.call_later(0.001, fut.set_result, "future")
            return await aio_as_trio(aio_library("coro")), await aio_as_trio(fut)

    assert trio.run(main) == (("asyncio", "coro"), "future")


def test_aio_as_trio_propagates_exceptions():
    async def fails():
        await asyncio.sleep(0)
        raise ValueError("from asyncio")

    async def main():
        async with open_loop():
            with pytest.raises(ValueError, match="from asyncio"):
                await aio_as_trio(fails)()

    trio.run(main)


def test_trio_cancel_scope_cancels_the_asyncio_task():
    seen = []

    async def sleeper():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            await asyncio.sleep(0)  # cleanup that needs the loop still works
            seen.append("cleaned up")
            raise

    async def main():
        async with open_loop():
            with trio.move_on_after(0.01) as scope:
                await aio_as_trio(sleeper)()
            assert scope.cancelled_caught
            assert seen == ["cancelled", "cleaned up"]  # finished before the caller returned

    trio.run(main)


def test_asyncio_side_cancellation_surfaces_as_asyncio_cancelled_error():
    async def cancels_itself():
        asyncio.current_task().cancel()
        await asyncio.sleep(0)

    async def main():
        async with open_loop():
            with pytest.raises(asyncio.CancelledError):
                await aio_as_trio(cancels_itself)()

    trio.run(main)


def test_trio_as_aio_returns_the_result_and_sniffio_says_trio():
    async def aio_main():
        return await trio_as_aio(trio_library)(9), sniffio.current_async_library()

    async def main():
        async with open_loop():
            return await aio_as_trio(aio_main)()

    assert trio.run(main) == (("trio", 9), "asyncio")


def test_trio_as_aio_as_decorator_propagates_exceptions():
    @trio_as_aio
    async def fails():
        await trio.sleep(0)
        raise KeyError("from trio")

    async def aio_main():
        with pytest.raises(KeyError, match="from trio"):
            await fails()
        return "ok"

    async def main():
        async with open_loop():
            return await aio_as_trio(aio_main)()

    assert trio.run(main) == "ok"


def test_cancelling_the_asyncio_task_cancels_the_trio_code():
    seen = []

    async def trio_sleeper():
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            seen.append("trio cancelled")
            with trio.CancelScope(shield=True):
                await trio.sleep(0)
            seen.append("trio cleaned up")
            raise

    async def aio_main():
        task = asyncio.ensure_future(trio_as_aio(trio_sleeper)())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return list(seen)

    async def main():
        async with open_loop():
            return await aio_as_trio(aio_main)()

    assert trio.run(main) == ["trio cancelled", "trio cleaned up"]


def test_asyncio_wait_for_timeout_cancels_trio_code():
    async def aio_main():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(trio_as_aio(trio.sleep_forever)(), 0.01)
        return "timed out"

    async def main():
        async with open_loop():
            return await aio_as_trio(aio_main)()

    assert trio.run(main) == "timed out"


def test_nested_crossings_keep_the_right_library():
    async def inner_aio():
        return await aio_library("deep")

    async def middle_trio():
        return await aio_as_trio(inner_aio)(), sniffio.current_async_library()

    async def outer_aio():
        return await trio_as_aio(middle_trio)(), sniffio.current_async_library()

    async def main():
        async with open_loop():
            return await aio_as_trio(outer_aio)()

    assert trio.run(main) == (((("asyncio", "deep"), "trio")), "asyncio")


def test_context_variables_flow_into_the_asyncio_call():
    var = contextvars.ContextVar("var")

    async def read_var():
        return var.get()

    async def main():
        var.set("from trio")
        async with open_loop():
            return await aio_as_trio(read_var)()

    assert trio.run(main) == "from trio"


def test_asyncio_tasks_run_alongside_trio_tasks():
    async def main():
        async with open_loop() as loop:
            events = []
            send, receive = trio.open_memory_channel(10)

            async def aio_producer():
                for i in range(3):
                    await asyncio.sleep(0.001)
                    await trio_as_aio(send.send)(i)
                await trio_as_aio(send.aclose)()

            task = loop.create_task(aio_producer())
            async with receive:
                async for item in receive:
                    events.append(item)
            await aio_as_trio(task)
            return events

    assert trio.run(main) == [0, 1, 2]


def test_trio_code_can_complete_asyncio_futures_directly():
    # loop.call_soon from trio code (here via Future.set_result) must wake the waiting loop.
    async def main():
        async with open_loop() as loop:
            fut = loop.create_future()

            async def waiter():
                return await fut

            task = loop.create_task(waiter())
            await trio.sleep(0.01)  # the loop is now blocked with nothing to do
            fut.set_result("set from trio")
            return await aio_as_trio(task)

    assert trio.run(main) == "set from trio"


def test_multiloop_trio_run_starts_trio_with_a_loop():
    async def main(x):
        return await aio_as_trio(aio_library)(x)

    assert multiloop_trio.run(main, 4) == ("asyncio", 4)


def test_body_exception_is_not_wrapped_in_an_exception_group():
    async def main():
        async with open_loop():
            raise ValueError("body")

    with pytest.raises(ValueError, match="body"):
        trio.run(main)


def test_second_open_loop_in_the_same_run_is_refused():
    async def main():
        async with open_loop():
            with pytest.raises(RuntimeError, match="one per run"):
                async with open_loop():
                    pass

    trio.run(main)


def test_open_loop_can_be_used_again_after_closing():
    async def main():
        results = []
        for i in range(3):
            async with open_loop():
                results.append(await aio_as_trio(aio_library)(i))
        return results

    assert trio.run(main) == [("asyncio", 0), ("asyncio", 1), ("asyncio", 2)]


def test_adapters_outside_open_loop_say_what_is_missing():
    async def main():
        with pytest.raises(RuntimeError, match="open_loop"):
            await aio_as_trio(aio_library)()

    trio.run(main)


def test_run_in_executor_and_threadsafe_calls_inside_open_loop():
    async def aio_main():
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, sum, [1, 2, 3])

    async def main():
        async with open_loop():
            return await aio_as_trio(aio_main)()

    assert trio.run(main) == 6


def test_trio_async_generators_stay_with_trio_inside_open_loop():
    closed = []

    async def trio_gen():
        try:
            yield 1
            yield 2
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(0)
            closed.append(sniffio.current_async_library())

    async def main():
        async with open_loop():
            g = trio_gen()
            assert await g.__anext__() == 1
            await g.aclose()

    trio.run(main)
    assert closed == ["trio"]
