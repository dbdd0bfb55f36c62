"""The drive path (``run_until_complete``/``run_forever`` from plain code): trio runs as a guest of the loop, so
the loop's callbacks run outside any trio task; with the per-fd fallback the loop still runs inside trio.run."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest
import trio
from multiloop_trio import aio_as_trio, trio_as_aio
from multiloop_trio._guest import HostWake


@pytest.fixture
def other_trio_run():
    """A trio.run in another thread (what anyio's blocking portal starts): its token, stopped at teardown."""
    started = threading.Event()
    box: dict = {}

    async def main():
        box["token"] = trio.lowlevel.current_trio_token()
        box["stop"] = trio.Event()
        started.set()
        await box["stop"].wait()

    thread = threading.Thread(target=trio.run, args=(main,), name="other trio run")
    thread.start()
    assert started.wait(30)
    yield box["token"]
    trio.from_thread.run_sync(box["stop"].set, trio_token=box["token"])
    thread.join(30)
    assert not thread.is_alive()


def in_trio_task() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def test_callbacks_and_tasks_run_outside_any_trio_task(loop, waiting):
    seen = []

    async def main():
        asyncio.get_running_loop().call_soon(lambda: seen.append(in_trio_task()))
        await asyncio.sleep(0)
        seen.append(in_trio_task())
        # ... yet inside the guest run: trio's synchronous API works from asyncio code.
        return trio.lowlevel.current_trio_token() is not None

    assert loop.run_until_complete(main())
    # The fallback (no pollable inner poller) keeps the loop inside trio.run.
    assert seen == ([False, False] if waiting == "multiplexed" else [True, True])
    assert loop.stats().backend_stats["guest_runs"] == (1 if waiting == "multiplexed" else 0)


def test_blocking_from_thread_call_to_another_trio_run_works_from_a_callback(loop, waiting, other_trio_run):
    async def answer():
        await trio.sleep(0)
        return 42

    async def main():
        fut = asyncio.get_running_loop().create_future()

        def callback():
            try:
                fut.set_result(trio.from_thread.run(answer, trio_token=other_trio_run))
            except RuntimeError as exc:
                fut.set_exception(exc)

        asyncio.get_running_loop().call_soon(callback)
        return await fut

    if waiting == "multiplexed":
        assert loop.run_until_complete(main()) == 42
    else:
        with pytest.raises(RuntimeError, match="blocking function"):
            loop.run_until_complete(main())


def test_blocking_from_thread_call_works_from_a_task(loop, waiting, other_trio_run):
    if waiting != "multiplexed":
        pytest.skip("the guest drive")

    async def main():
        return trio.from_thread.run_sync(lambda: "sync", trio_token=other_trio_run)

    assert loop.run_until_complete(main()) == "sync"


def test_trio_awaited_from_asyncio_code_on_the_drive_path(loop):
    async def trio_side(event):
        await event.wait()  # set by asyncio code, from outside any trio task
        await trio.sleep(0.001)
        return await aio_as_trio(asyncio.sleep)(0, result="back in asyncio")

    async def main():
        event = trio.Event()
        call = asyncio.ensure_future(trio_as_aio(trio_side)(event))
        await asyncio.sleep(0)
        event.set()
        return await call

    assert loop.run_until_complete(main()) == "back in asyncio"


def test_trio_as_aio_cancelled_by_the_asyncio_side_on_the_drive_path(loop):
    cancelled = []

    async def sleeper():
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(True)
            raise

    async def main():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(trio_as_aio(sleeper)(), 0.01)

    loop.run_until_complete(main())
    assert cancelled == [True]


def test_the_guest_run_has_finished_when_the_drive_returns(loop, waiting):
    """Nothing of trio is left in the thread between runs: trio.run works there, and repeated drives reuse
    trio's worker thread instead of accumulating threads."""
    async def main():
        await trio_as_aio(trio.sleep)(0)

    loop.run_until_complete(main())
    threads = threading.active_count()
    for _ in range(20):
        loop.run_until_complete(main())
        assert not trio.lowlevel.in_trio_run()
    assert threading.active_count() <= threads
    assert trio.run(trio.sleep, 0) is None


def test_a_failing_guest_run_is_raised_out_of_run_until_complete(loop, waiting):
    """A crashed trio system task ends the run with TrioInternalError: run_until_complete raises it (with the
    crash as its cause), and the loop can run again."""
    async def crash():
        raise ValueError("trio system task crashed")

    async def main():
        trio.lowlevel.spawn_system_task(crash)
        await asyncio.sleep(3600)

    with pytest.raises(trio.TrioInternalError) as info:
        loop.run_until_complete(main())
    cause = info.value.__cause__
    assert isinstance(cause, BaseExceptionGroup) and cause.subgroup(ValueError) is not None
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    assert loop.run_until_complete(trio_as_aio(trio.sleep)(0)) is None


def test_stop_leaves_later_callbacks_for_the_next_run(loop):
    """The guest winds down after loop.stop() without running asyncio callbacks: those belong to the next run."""
    log = []

    def first():
        loop.stop()
        loop.call_soon(log.append, "next run")

    loop.call_soon(first)
    loop.run_forever()
    assert log == []
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert log == ["next run"]


def test_keyboard_interrupt_from_a_callback_is_raised_bare_after_the_guest_finished(loop):
    async def main():
        asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGINT)
        await asyncio.sleep(3600)

    task = loop.create_task(main())
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(task)
    assert not trio.lowlevel.in_trio_run()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # the child only closes
def test_a_child_forked_while_trio_wakes_the_host_can_close_its_copy():
    """trio's worker thread holds the host wake-up's lock while it writes; a fork() at that moment gives the
    child a lock nobody will release. Closing the child's copy must not wait for it."""
    wake = HostWake()
    wake._lock.acquire()  # as trio's worker thread does inside wake()
    try:
        pid = os.fork()
        if pid == 0:
            try:
                wake.close()
            finally:
                os._exit(0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung closing its copy of the host wake-up")
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        wake._lock.release()
        wake.close()
