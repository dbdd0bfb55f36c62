"""The compiled core keeps spent call_soon handles for reuse (multiloop/_fasthandles.pxd, ml_recycle): only a
handle nobody else holds. Seen from outside, nothing may differ from handles that are freed: a handle the caller
kept keeps its state, weak references work, callbacks and loops are released as promptly as before. These run on
both builds and every backend (in the pure build there is no reuse, and the same behaviour is expected), for
call_soon's handles and for call_soon_threadsafe's (ml_ts_recycle: another class, with two slots more)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import weakref

import pytest

import multiloop
from multiloop._threadsafe_handle import ThreadSafeHandle


@pytest.fixture(params=["call_soon", "call_soon_threadsafe"])
def post(request, loop):
    """The loop method that makes the handles under test."""
    return getattr(loop, request.param)


def _drain(loop, rounds: int = 3) -> None:
    for _ in range(rounds):
        loop.run_until_complete(asyncio.sleep(0))


def test_a_kept_handle_is_never_reused_and_keeps_its_state(loop, post):
    def kept_callback():
        pass

    kept = post(kept_callback)
    _drain(loop)
    fresh = [post(print) for _ in range(500)]
    assert all(h is not kept for h in fresh)
    # asyncio's Handle keeps its callback after running; a reused object would have lost or changed it.
    assert kept._callback is kept_callback
    assert "kept_callback" in repr(kept)
    assert not kept.cancelled()
    if isinstance(kept, ThreadSafeHandle):
        assert all(type(h) is ThreadSafeHandle and h._runner is None and h._lock is None for h in fresh)
        kept.cancel()  # after it ran: no wait, and no effect on the spare handles
        assert kept.cancelled()
    for h in fresh:
        h.cancel()


def test_a_weakly_referenced_handle_dies_when_dropped(loop, post):
    ran = []
    handle = post(ran.append, 1)
    ref = weakref.ref(handle)
    del handle
    _drain(loop)
    assert ran == [1]
    assert ref() is None  # freed as usual, not parked somewhere for reuse


def test_callbacks_and_arguments_are_released_once_run(loop, post):
    class Payload:
        def method(self, arg):
            arg.append(self)

    payload, box = Payload(), []
    payload_ref = weakref.ref(payload)
    post(payload.method, box)
    del payload
    _drain(loop)
    assert len(box) == 1
    box.clear()
    assert payload_ref() is None  # no collection needed: nothing keeps the callback's object


def test_reused_handles_run_in_their_own_context_and_can_be_cancelled(loop, post):
    var = contextvars.ContextVar("var", default="unset")
    seen = []

    def record(tag):
        seen.append((tag, var.get()))
        var.set(tag)  # in this callback's own context copy only

    for i in range(300):  # enough handles for the spare ones to be handed out again
        post(record, i)
    _drain(loop)
    assert seen == [(i, "unset") for i in range(300)]
    seen.clear()
    handles = [post(record, i) for i in range(300)]
    for h in handles[::2]:
        h.cancel()
    del handles
    _drain(loop)
    assert seen == [(i, "unset") for i in range(1, 300, 2)]


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe"])
def test_a_closed_loop_is_collected_after_running_callbacks(backend, method):
    loop = multiloop.new_loop(backend=backend)
    for _ in range(50):
        getattr(loop, method)(lambda: None)
    _drain(loop)
    loop.close()
    ref = weakref.ref(loop)
    del loop
    for _ in range(3):  # the trio backend's finished coroutines are finalised in a first collection
        gc.collect()
    assert ref() is None  # spare handles must not keep their last loop alive


def test_a_reused_threadsafe_handle_cancelled_from_another_thread_never_runs(loop):
    import threading

    ran = []
    for _ in range(300):  # spare handles to reuse
        loop.call_soon_threadsafe(ran.append, "warm-up")
    _drain(loop)
    ran.clear()
    handles = []
    t = threading.Thread(target=lambda: handles.extend(loop.call_soon_threadsafe(ran.append, i) for i in range(100)))
    t.start()
    t.join()
    canceller = threading.Thread(target=lambda: [h.cancel() for h in handles[::2]])
    canceller.start()
    canceller.join()
    handles.clear()  # the loop's references only: each may be kept for reuse once run
    _drain(loop)
    assert ran == list(range(1, 100, 2))
