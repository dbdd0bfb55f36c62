"""Tasks, context, executors, async generators, exception handling, debug mode, DNS — on every backend."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import sys
import threading
import warnings

import pytest


def test_running_loop_current_task_and_task_names(loop, run):
    async def child():
        return asyncio.current_task().get_name()

    async def main():
        assert asyncio.get_running_loop() is loop
        t = loop.create_task(child(), name="kid")
        return await t

    assert run(main()) == "kid"


def test_create_task_runs_in_the_given_context(loop, run):
    var = contextvars.ContextVar("v", default="default")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "custom")

    async def read():
        return var.get()

    async def main():
        return await loop.create_task(read(), context=ctx)

    assert run(main()) == "custom"


def test_task_factory_is_used_and_can_be_reset(loop, run):
    made = []

    def factory(lp, coro, **kwargs):
        made.append(coro)
        return asyncio.Task(coro, loop=lp, **kwargs)

    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def main():
        return await loop.create_task(asyncio.sleep(0, "x"), name="n")

    assert run(main()) == "x"
    assert len(made) >= 1
    loop.set_task_factory(None)
    with pytest.raises(TypeError):
        loop.set_task_factory(42)


def test_timeout_and_taskgroup_work(loop, run):
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
        async with asyncio.TaskGroup() as tg:
            a = tg.create_task(asyncio.sleep(0.001, "a"))
            b = tg.create_task(asyncio.sleep(0, "b"))
        return a.result() + b.result()

    assert run(main()) == "ab"


def test_wait_for_cancels_the_inner_task_on_timeout(loop, run):
    async def main():
        cancelled = asyncio.Event()

        async def slow():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow(), 0.01)
        return cancelled.is_set()

    assert run(main())


def test_run_in_executor_runs_in_another_thread(loop, run):
    async def main():
        return await loop.run_in_executor(None, threading.get_ident)

    assert run(main()) != threading.get_ident()


def test_set_default_executor_requires_a_thread_pool(loop):
    with pytest.raises(TypeError, match="ThreadPoolExecutor"):
        loop.set_default_executor(object())


def test_run_in_executor_after_shutdown_is_refused(loop, run):
    async def main():
        await loop.run_in_executor(None, int)
        await loop.shutdown_default_executor()
        with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
            loop.run_in_executor(None, int)

    run(main())


def test_shutdown_asyncgens_finalizes_suspended_generators(loop, run):
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append(True)

    async def main():
        g = agen()
        assert await g.__anext__() == 1
        return g

    g = run(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert finalized == [True]
    del g


def test_exception_in_callback_goes_to_the_handler_and_the_loop_keeps_running(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def boom():
        raise ZeroDivisionError("x")

    loop.call_soon(boom)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    assert loop.get_exception_handler() is not None


def test_default_handler_logs_with_the_backend_name(loop, caplog):
    def boom():
        raise KeyError("lost")

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_soon(boom)
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert "Exception in callback" in caplog.text
    assert f"multiloop backend: {loop.backend}" in caplog.text
    assert "KeyError" in caplog.text


def test_a_failing_custom_handler_is_reported_by_the_default_handler(loop, caplog):
    def bad_handler(lp, ctx):
        raise RuntimeError("handler broke")

    loop.set_exception_handler(bad_handler)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "original"})
    assert "Unhandled error in exception handler" in caplog.text


def test_exception_handler_must_be_callable(loop):
    with pytest.raises(TypeError):
        loop.set_exception_handler("nope")


def test_debug_mode_warns_about_slow_callbacks(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.0
    assert loop.get_debug()
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.call_soon(sum, [1, 2])
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert "Executing" in caplog.text and "took" in caplog.text
    loop.set_debug(False)


def test_debug_mode_refuses_calls_from_other_threads(loop, run):
    loop.set_debug(True)

    async def main():
        errors = []

        def other():
            try:
                loop.call_soon(print)
            except RuntimeError as exc:
                errors.append(str(exc))

        t = threading.Thread(target=other)
        t.start()
        await loop.run_in_executor(None, t.join)
        return errors

    assert run(main()) == ["Non-thread-safe operation invoked on an event loop other than the current one"]
    loop.set_debug(False)


def test_numeric_getaddrinfo_needs_no_thread(loop, run):
    async def main():
        result = await loop.getaddrinfo("127.0.0.1", 8080, type=socket.SOCK_DGRAM)
        result6 = await loop.getaddrinfo("::1", "443", family=socket.AF_INET6)
        return result, result6

    r4, r6 = run(main())
    assert r4 == socket.getaddrinfo("127.0.0.1", 8080, type=socket.SOCK_DGRAM)
    assert r6 == socket.getaddrinfo("::1", 443, socket.AF_INET6)
    assert loop._default_executor is None  # no thread pool was started for numeric lookups


def test_name_lookups_go_through_the_executor_and_errors_propagate(loop, run):
    async def main():
        ok = await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
        with pytest.raises(socket.gaierror):
            await loop.getaddrinfo("no-such-host.invalid", 80)
        name = await loop.getnameinfo(("127.0.0.1", 80))
        return ok, name

    ok, name = run(main())
    assert ok and all(entry[1] == socket.SOCK_STREAM for entry in ok)
    assert isinstance(name, tuple) and len(name) == 2


def test_asyncio_runner_with_loop_factory(backend):
    import multiloop

    async def main():
        return asyncio.get_running_loop().backend

    with asyncio.Runner(loop_factory=multiloop.loop_factory(backend)) as runner:
        assert runner.run(main()) == backend


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is new in 3.12")
def test_asyncio_run_with_loop_factory(backend):
    import multiloop

    async def main():
        return asyncio.get_running_loop().backend

    assert asyncio.run(main(), loop_factory=multiloop.loop_factory(backend)) == backend


def test_multiloop_run_is_like_asyncio_run(backend):
    import multiloop

    async def main():
        await asyncio.sleep(0)
        return asyncio.get_running_loop().backend

    assert multiloop.run(main(), backend=backend) == backend
    with pytest.raises(ValueError, match="coroutine was expected"):
        multiloop.run(lambda: None, backend=backend)


@pytest.mark.skipif(sys.version_info >= (3, 16), reason="asyncio has no policies from 3.16 on")
def test_event_loop_policy_makes_multiloop_loops(backend):
    import multiloop

    with warnings.catch_warnings():
        # asyncio's own get/set_event_loop_policy are deprecated from 3.14 on; multiloop adds no warning.
        warnings.filterwarnings("ignore", message=r".*asyncio\.(get|set)_event_loop_policy", category=DeprecationWarning)
        old = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(multiloop.EventLoopPolicy(backend))
        try:
            async def main():
                return asyncio.get_running_loop()

            lp = asyncio.run(main())
            assert isinstance(lp, multiloop.EventLoop) and lp.backend == backend
        finally:
            asyncio.set_event_loop_policy(old)


def test_anyio_runs_on_a_multiloop_loop(backend):
    anyio = pytest.importorskip("anyio")
    import multiloop

    async def main():
        await anyio.sleep(0)
        return asyncio.get_running_loop().backend

    assert anyio.run(main, backend="asyncio",
                     backend_options={"loop_factory": multiloop.loop_factory(backend)}) == backend
