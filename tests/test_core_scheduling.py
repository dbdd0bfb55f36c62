"""Scheduling: call_soon / call_later / call_at / call_soon_threadsafe, run/stop/close, on every backend."""

from __future__ import annotations

import asyncio
import threading

import pytest


def test_call_soon_runs_callbacks_in_fifo_order(loop):
    seen = []
    for i in range(5):
        loop.call_soon(seen.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [0, 1, 2, 3, 4]


def test_callbacks_scheduled_by_a_callback_run_in_the_next_pass(loop):
    seen = []

    def first():
        seen.append("first")
        loop.call_soon(seen.append, "scheduled-by-first")

    loop.call_soon(first)
    loop.call_soon(seen.append, "second")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["first", "second"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["first", "second", "scheduled-by-first"]


def test_call_soon_passes_args_and_context(loop):
    import contextvars

    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    seen = []
    loop.call_soon(lambda a, b: seen.append((a, b, var.get())), 1, 2, context=ctx)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [(1, 2, "inner")]


def test_a_context_that_is_not_a_context_fails_that_callback_only_and_is_reported(loop):
    # The loop runs a handle with contextvars.Context.run (pure) or PyContext_Enter (compiled), both of which
    # take only a real Context; stock asyncio fails the same callback with an AttributeError instead.
    seen, reported = [], []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    loop.call_soon(seen.append, "never", context=object())
    loop.call_soon(seen.append, "next")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["next"]
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], TypeError)
    assert "Context" in str(reported[0]["exception"])


def test_cancelled_handle_does_not_run(loop):
    seen = []
    handle = loop.call_soon(seen.append, "no")
    handle.cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == []


def test_timers_fire_in_deadline_order_not_scheduling_order(loop, run):
    seen = []

    async def main():
        done = loop.create_future()
        loop.call_later(0.03, seen.append, 3)
        loop.call_later(0.01, seen.append, 1)
        loop.call_later(0.02, seen.append, 2)
        loop.call_later(0.04, done.set_result, None)
        await done

    run(main())
    assert seen == [1, 2, 3]


def test_timers_with_equal_deadlines_fire_in_scheduling_order(loop):
    seen = []
    when = loop.time() + 0.01
    for i in range(20):
        loop.call_at(when, seen.append, i)
    loop.call_at(when, loop.stop)
    loop.run_forever()
    assert seen == list(range(20))


def test_timer_does_not_fire_before_its_deadline(loop):
    fired = []
    start = loop.time()
    loop.call_later(0.05, lambda: (fired.append(loop.time()), loop.stop()))
    loop.run_forever()
    assert fired[0] - start >= 0.05 - loop._clock_resolution


def test_cancelled_timer_does_not_fire(loop):
    seen = []
    t = loop.call_later(0.01, seen.append, "no")
    t.cancel()
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert seen == [] and t.cancelled()


def test_timer_handle_reports_its_deadline(loop):
    t = loop.call_at(loop.time() + 100, lambda: None)
    assert t.when() == pytest.approx(loop.time() + 100, abs=1)
    t.cancel()


def test_a_hundred_thousand_cancelled_timers_are_purged_from_the_heap(loop):
    count = 100_000
    timers = [loop.call_later(3600 + i, lambda: None) for i in range(count)]
    keep = loop.call_later(10_000_000, lambda: None)
    for t in timers:
        t.cancel()
    assert loop.stats().cancelled_timers == count
    del timers
    loop.call_soon(loop.stop)
    loop.run_forever()
    stats = loop.stats()
    assert stats.cancelled_timers == 0
    assert stats.timers == 1
    assert len(loop._scheduled) == 1  # the heap itself shrank: no memory kept for dead timers
    keep.cancel()


def test_due_timers_fire_once_when_the_pass_that_runs_them_purges_cancelled_ones(loop):
    # Over half of >100 timers cancelled: the pass that fires the due ones also rebuilds the heap. A due timer
    # must leave the heap it is popped from (it once stayed in the rebuilt copy and fired again next pass).
    fired = []
    start = loop.time()
    for i in range(400):
        handle = loop.call_at(start + (i % 10) * 0.0001, fired.append, i)
        if i % 4:
            handle.cancel()
    loop.call_at(start + 0.05, loop.stop)
    loop.run_forever()
    assert sorted(fired) == list(range(0, 400, 4))


def test_stop_before_run_forever_runs_exactly_one_pass(loop):
    seen = []
    loop.call_soon(seen.append, 1)
    loop.stop()
    loop.run_forever()
    assert seen == [1]
    assert not loop.is_running()


def test_run_until_complete_returns_result_and_propagates_exception(loop):
    async def ok():
        return 42

    async def bad():
        raise ValueError("boom")

    assert loop.run_until_complete(ok()) == 42
    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(bad())


def test_run_until_complete_when_stopped_early_says_so(loop):
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="stopped before Future completed"):
        loop.run_until_complete(fut)


def test_run_forever_while_running_is_refused(loop):
    errors = []

    def nested():
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()

    loop.call_soon(nested)
    loop.run_forever()
    assert errors == ["This event loop is already running"]


def test_close_while_running_is_refused(loop):
    errors = []

    def close():
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()

    loop.call_soon(close)
    loop.run_forever()
    assert errors == ["Cannot close a running event loop"]


def test_closed_loop_refuses_scheduling_and_running(backend):
    import multiloop

    lp = multiloop.new_loop(backend)
    lp.close()
    lp.close()  # idempotent
    assert lp.is_closed()
    coro = asyncio.sleep(0)
    for call in (lambda: lp.call_soon(print), lambda: lp.call_later(1, print), lambda: lp.call_at(1, print),
                 lambda: lp.call_soon_threadsafe(print), lp.run_forever, lambda: lp.create_task(coro),
                 lambda: lp.add_reader(0, print), lambda: lp.run_in_executor(None, print)):
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            call()
    coro.close()


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe", "call_later", "call_at"])
def test_coroutines_are_refused_as_callbacks(loop, method):
    async def coro_fn():
        pass

    args = {"call_soon": (), "call_soon_threadsafe": (), "call_later": (1,), "call_at": (1,)}[method]
    fn = getattr(loop, method)
    # As in stock asyncio, call_later reports through call_at, which it delegates to.
    name = "call_at" if method == "call_later" else method
    with pytest.raises(TypeError, match=f"coroutines cannot be used with {name}"):
        fn(*args, coro_fn)
    coro = coro_fn()
    with pytest.raises(TypeError, match=f"coroutines cannot be used with {name}"):
        fn(*args, coro)
    coro.close()


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe", "call_later", "call_at"])
def test_a_coroutine_function_is_refused_right_after_a_plain_one_was_accepted(loop, method):
    # The pure build remembers the last plain function it checked (LoopCore._checked_function): the next,
    # different, function must still be checked, even a coroutine function with the same name.
    args = {"call_soon": (), "call_soon_threadsafe": (), "call_later": (1,), "call_at": (1,)}[method]
    fn = getattr(loop, method)
    name = "call_at" if method == "call_later" else method

    def step():
        pass

    for _ in range(3):
        fn(*args, step).cancel()

    async def step():  # noqa: F811  (the same name on purpose)
        pass

    with pytest.raises(TypeError, match=f"coroutines cannot be used with {name}"):
        fn(*args, step)


def test_a_checked_callback_is_not_kept_alive_past_the_pass(loop):
    # The check's memo must not outlive the handle by more than the pass: a cancelled handle's function is
    # freed once a pass has run, and a closed loop keeps none.
    import gc
    import weakref

    def make():
        def callback():
            pass
        return callback

    callback = make()
    ref = weakref.ref(callback)
    loop.call_soon(callback).cancel()
    del callback
    loop.run_until_complete(asyncio.sleep(0))
    gc.collect()
    assert ref() is None

    callback = make()
    ref = weakref.ref(callback)
    loop.call_later(10, callback).cancel()
    del callback
    loop.close()
    gc.collect()
    assert ref() is None


def test_non_callable_callback_is_refused(loop):
    with pytest.raises(TypeError, match="callable"):
        loop.call_soon(42)


def test_none_delay_is_refused(loop):
    with pytest.raises(TypeError):
        loop.call_later(None, print)


def test_a_burst_of_threadsafe_calls_all_run(loop, run):
    async def main():
        seen = []
        done = loop.create_future()
        n = 2000

        def add(i):
            seen.append(i)
            if len(seen) == n:
                done.set_result(None)

        def producer():
            for i in range(n):
                loop.call_soon_threadsafe(add, i)

        threads = [threading.Thread(target=producer) for _ in range(1)]
        for t in threads:
            t.start()
        await done
        for t in threads:
            t.join()
        return seen

    assert run(main()) == list(range(2000))


def test_time_is_monotonic(loop):
    a = loop.time()
    b = loop.time()
    assert b >= a


def test_stats_count_iterations_and_callbacks(loop):
    before = loop.stats()
    for _ in range(3):
        loop.call_soon(lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    after = loop.stats()
    assert after.callbacks - before.callbacks == 4
    assert after.iterations > before.iterations
    assert after.backend == loop.backend


def test_repr_names_backend(loop):
    assert f"backend={loop.backend}" in repr(loop)
