"""The handle ``call_soon_threadsafe`` returns can be cancelled from another thread: a cancel waits for a
running callback to return, and a cancelled handle never runs. On 3.14+ it is asyncio's own private class
(its tests check ``isinstance``); this file also fails loudly if a release changes that class's shape."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from asyncio import events as aio_events

import pytest

from multiloop import _threadsafe_handle


def test_asyncio_private_class_is_used_where_it_exists_and_has_the_shape_we_rely_on():
    cls = getattr(aio_events, "_ThreadSafeHandle", None)
    if sys.version_info >= (3, 14):
        assert cls is not None, "asyncio.events._ThreadSafeHandle is gone: update multiloop/_threadsafe_handle.py"
    if cls is None:
        assert _threadsafe_handle.ThreadSafeHandle is _threadsafe_handle._OwnThreadSafeHandle
        return
    assert _threadsafe_handle.ThreadSafeHandle is cls
    assert issubclass(cls, asyncio.Handle)
    assert "_lock" in cls.__slots__
    for name in ("cancel", "cancelled", "_run"):
        assert name in vars(cls), f"_ThreadSafeHandle no longer overrides {name}"


def test_call_soon_threadsafe_returns_the_thread_safe_handle(loop):
    handle = loop.call_soon_threadsafe(lambda: None)
    assert isinstance(handle, _threadsafe_handle.ThreadSafeHandle)
    handle.cancel()


def test_debug_source_traceback_ends_at_the_caller(loop):
    loop.set_debug(True)
    handle = loop.call_soon_threadsafe(lambda: None)  # this line
    last = handle._source_traceback[-1]
    assert last.name == test_debug_source_traceback_ends_at_the_caller.__name__
    handle.cancel()


def test_cancel_from_another_thread_waits_for_the_running_callback(loop):
    started = threading.Event()
    events = []

    def callback():
        started.set()
        time.sleep(0.2)  # the other thread's cancel() must wait for this to return
        events.append("callback returned")

    handle = loop.call_soon_threadsafe(callback)

    def canceller():
        started.wait()
        handle.cancel()
        events.append("cancel returned")
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=canceller)
    t.start()
    loop.run_forever()
    t.join()
    assert events == ["callback returned", "cancel returned"]


def test_a_handle_cancelled_from_another_thread_before_it_runs_never_runs(loop, run):
    ran = []
    handles = []

    def schedule_and_cancel():
        for i in range(200):
            h = loop.call_soon_threadsafe(ran.append, i)
            if i % 2:
                h.cancel()
            handles.append(h)

    t = threading.Thread(target=schedule_and_cancel)
    t.start()
    t.join()

    async def main():
        await asyncio.sleep(0)

    run(main())
    assert ran == list(range(0, 200, 2))
    assert [h.cancelled() for h in handles] == [bool(i % 2) for i in range(200)]


@pytest.mark.parametrize("cls", [_threadsafe_handle._OwnThreadSafeHandle])
def test_own_handle_cancel_from_the_callback_itself_does_not_deadlock(loop, cls):
    ran = []
    box = []

    def callback():
        box[0].cancel()  # re-entrant lock: cancelling oneself while running is allowed
        ran.append(True)

    box.append(cls(callback, (), loop))
    box[0]._run()
    assert ran == [True] and box[0].cancelled()
