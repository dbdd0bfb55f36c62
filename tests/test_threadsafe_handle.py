"""The handle ``call_soon_threadsafe`` returns can be cancelled from another thread: a cancel waits for a
running callback to return, and a cancelled handle never runs. On 3.14+ it is asyncio's own private class
(its tests check ``isinstance``); this file also fails loudly if a release changes that class's shape."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from asyncio import events as aio_events

from multiloop import _threadsafe_handle


def test_asyncio_private_class_is_subclassed_where_it_exists_and_has_the_shape_we_rely_on(loop):
    cls = getattr(aio_events, "_ThreadSafeHandle", None)
    if sys.version_info >= (3, 14):
        assert cls is not None, "asyncio.events._ThreadSafeHandle is gone: update multiloop/_threadsafe_handle.py"
    ours = _threadsafe_handle.ThreadSafeHandle
    if cls is None:
        assert not _threadsafe_handle.IS_ASYNCIO_CLASS
        assert ours.__bases__ == (asyncio.Handle,)
    else:
        assert _threadsafe_handle.IS_ASYNCIO_CLASS and ours.__bases__ == (cls,)
        assert issubclass(cls, asyncio.Handle)
        assert "_lock" in cls.__slots__, "asyncio's class lost its _lock slot, which ours reuses"
    for name in ("__init__", "cancel", "cancelled", "_run"):
        assert name in vars(ours), f"our handle must override {name} (asyncio's takes an RLock)"
    # The core fills these slots itself (no __init__ call outside debug mode): they must all exist.
    slots = {s for klass in ours.__mro__ for s in getattr(klass, "__slots__", ())}
    assert {"_callback", "_args", "_cancelled", "_loop", "_repr", "_source_traceback", "_context", "_lock",
            "_runner"} <= slots
    assert not hasattr(ours(lambda: None, (), loop), "__dict__")


def test_the_core_builds_the_handle_as_its_init_does(loop):
    fast = loop.call_soon_threadsafe(print, 1, 2)
    slow = _threadsafe_handle.ThreadSafeHandle(print, (1, 2), loop, fast._context)
    for name in ("_callback", "_args", "_cancelled", "_loop", "_repr", "_source_traceback", "_context", "_lock",
                 "_runner"):
        assert getattr(fast, name) == getattr(slow, name), name
    assert repr(fast) == repr(slow)
    fast.cancel()


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


def test_cancelled_asked_from_another_thread_waits_for_the_running_callback(loop):
    started = threading.Event()
    events = []

    def callback():
        started.set()
        time.sleep(0.2)  # the other thread's cancelled() must wait for this to return
        events.append("callback returned")

    handle = loop.call_soon_threadsafe(callback)

    def asker():
        started.wait()
        events.append(("cancelled", handle.cancelled()))
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=asker)
    t.start()
    loop.run_forever()
    t.join()
    assert events == ["callback returned", ("cancelled", False)]


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


def test_cancel_from_the_callback_itself_does_not_deadlock(loop):
    ran = []
    box = []

    def callback():
        box[0].cancel()  # as with asyncio's re-entrant lock: cancelling oneself while running is allowed
        ran.append(True)

    box.append(loop.call_soon_threadsafe(callback))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == [True] and box[0].cancelled()


def test_many_threads_cancelling_a_running_callback_all_wait_for_it(loop):
    started = threading.Event()
    release = threading.Event()
    returned = []

    def callback():
        started.set()
        release.wait(5)
        returned.append("callback")

    handle = loop.call_soon_threadsafe(callback)

    def canceller():
        started.wait(5)
        handle.cancel()
        returned.append("cancel")

    threads = [threading.Thread(target=canceller) for _ in range(4)]
    for t in threads:
        t.start()

    def let_go():
        # The cancellers are blocked in cancel() (or about to be): none has returned while the callback runs.
        time_left = 50
        while time_left and not all(t.is_alive() for t in threads):
            time_left -= 1
        release.set()

    threading.Thread(target=lambda: (started.wait(5), let_go())).start()
    loop.call_soon(loop.stop)
    loop.run_forever()
    for t in threads:
        t.join(5)
    assert returned == ["callback"] + ["cancel"] * 4
    assert handle.cancelled() and handle._callback is None


def test_cancel_racing_the_run_either_wins_or_waits(loop):
    """Many handles, each cancelled by another thread at about the moment the loop runs it: a handle whose
    cancel() returned before the callback started never runs, and no cancel() returns while its callback runs."""
    n = 2000
    state = [0] * n  # 0 never ran, 1 running, 2 returned
    violations = []
    handles = []

    def callback(i):
        state[i] = 1
        state[i] = 2

    for i in range(n):
        handles.append(loop.call_soon_threadsafe(callback, i))

    def canceller():
        for i in range(n - 1, -1, -1):
            handles[i].cancel()
            if state[i] == 1:
                violations.append(i)  # cancel() returned while the callback was running

    t = threading.Thread(target=canceller)
    t.start()
    loop.call_soon(loop.stop)
    loop.run_forever()
    t.join()
    assert violations == []
    assert all(h.cancelled() for h in handles)
    ran = [i for i in range(n) if state[i] == 2]
    assert all(state[i] in (0, 2) for i in range(n))
    assert ran == sorted(ran)  # and nothing ran twice or out of order


def test_cancel_and_cancelled_raise_the_canceller_flag_only_inside_their_section(loop):
    # The compiled runner skips the transition lock while CANCELLER_INSIDE[0] is down: the flag must be up
    # exactly while a canceller reads and writes the handle's state, and down again however the section ends.
    seen = []

    class SpyRunner:
        """A _runner value whose comparison (made inside the section) records the flag; "done" when asked."""

        def __init__(self, fail: bool = False) -> None:
            self.fail = fail

        def __eq__(self, other: object) -> bool:
            seen.append(_threadsafe_handle.CANCELLER_INSIDE[0])
            if self.fail:
                raise RuntimeError("boom")
            return other == _threadsafe_handle._DONE

        __hash__ = None  # type: ignore[assignment]

    handle = loop.call_soon_threadsafe(lambda: None)
    handle._runner = SpyRunner()
    assert handle.cancelled() is False
    handle.cancel()
    assert handle.cancelled() is True
    assert seen == [True, True, True], seen
    assert _threadsafe_handle.CANCELLER_INSIDE[0] is False

    other = loop.call_soon_threadsafe(lambda: None)
    other._runner = SpyRunner(fail=True)
    try:
        other.cancel()
    except RuntimeError:
        pass
    else:
        raise AssertionError("the spy did not run")
    assert seen[-1] is True
    assert _threadsafe_handle.CANCELLER_INSIDE[0] is False
    assert not _threadsafe_handle._transition.locked()


def test_the_runner_waits_while_a_canceller_is_inside_its_section(loop):
    # A canceller (simulated: the lock held and the flag up, as cancel() does) is between its reads and writes;
    # the loop must not start the callback until the section ends.
    ran = threading.Event()
    started = threading.Event()
    handle = loop.call_soon_threadsafe(ran.set)
    transition = _threadsafe_handle._transition
    transition.acquire()
    _threadsafe_handle.CANCELLER_INSIDE[0] = True

    def drive():
        started.set()
        loop.run_until_complete(asyncio.sleep(0))

    t = threading.Thread(target=drive)
    try:
        t.start()
        started.wait(5)
        # The runner is blocked on the lock (or has not reached the handle yet): the callback cannot have run.
        assert not ran.wait(0.2)
    finally:
        _threadsafe_handle.CANCELLER_INSIDE[0] = False
        transition.release()
    t.join(10)
    assert ran.is_set() and handle._runner == _threadsafe_handle._DONE


def test_the_compiled_runner_takes_the_transition_lock_as_this_build_allows():
    # Free-threaded 3.13+ compiled builds: the runner takes the lock as the PyMutex inside _thread.lock, a private
    # layout that ml_init_lock (_fasthandles.pxd) checks at import. If a release changes it, this fails (and the
    # runner has fallen back to calling acquire()/release(), which is correct but slower).
    import sysconfig

    from multiloop import compiled, core

    if not compiled.ACTIVE:
        assert core.TRANSITION_LOCK_PATH == 0
    elif sysconfig.get_config_var("Py_GIL_DISABLED") and sys.version_info >= (3, 13):
        assert core.TRANSITION_LOCK_PATH == 2
    else:
        assert core.TRANSITION_LOCK_PATH == 1
    # Whichever way, the lock is left as it was found: free, and usable by name.
    lock = _threadsafe_handle._transition
    assert not lock.locked()
    assert lock.acquire(blocking=False)
    lock.release()
