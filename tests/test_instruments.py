"""Instruments (``loop.add_instrument``) and the plugin hook that attaches them, on every backend.

The tests run in the compiled and in the pure-Python build alike (tox runs this module with
MULTILOOP_NO_EXTENSIONS=1 too): the hooks are in the core's pass, which differs between the two.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import pytest

import multiloop
from multiloop.registry import get_registry


def busy(seconds: float) -> None:
    """Run (not sleep) for at least ``seconds`` of the monotonic clock."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


class Recorder:
    """Every hook, appended to ``events`` as (hook name, args...)."""

    def __init__(self, events: list[tuple] | None = None, tag: str = "") -> None:
        self.events: list[tuple] = [] if events is None else events
        self.tag = tag

    def _add(self, *event: object) -> None:
        self.events.append((self.tag + str(event[0]), *event[1:]) if self.tag else event)

    def before_io_wait(self, timeout):
        self._add("before_io_wait", timeout)

    def after_io_wait(self, timeout):
        self._add("after_io_wait", timeout)

    def before_callback(self, handle):
        self._add("before_callback", handle)

    def after_callback(self, handle):
        self._add("after_callback", handle)

    def slow_callback(self, handle, duration):
        self._add("slow_callback", handle, duration)

    def task_spawned(self, task):
        self._add("task_spawned", task)

    def task_exited(self, task):
        self._add("task_exited", task)


@pytest.fixture
def errors(loop):
    """The contexts the loop's exception handler got."""
    seen: list[dict] = []
    loop.set_exception_handler(lambda lp, context: seen.append(context))
    return seen


def test_callback_hooks_surround_each_callback_with_its_handle(loop):
    rec = Recorder()
    loop.add_instrument(rec)
    ran = []
    handle = loop.call_soon(lambda: ran.append(len(rec.events)))
    timer = loop.call_later(0.001, loop.stop)
    loop.run_forever()
    names = [e[0] for e in rec.events]
    first = names.index("before_callback")
    assert rec.events[first] == ("before_callback", handle)
    assert ran == [first + 1]  # the callback ran right after its before_callback...
    assert rec.events[first + 1] == ("after_callback", handle)  # ...and after_callback right after it
    assert ("before_callback", timer) in rec.events and ("after_callback", timer) in rec.events
    callbacks = [e for e in rec.events if e[0] in ("before_callback", "after_callback")]
    assert [e[0] for e in callbacks] == ["before_callback", "after_callback"] * (len(callbacks) // 2)
    assert all(b[1] is a[1] for b, a in zip(callbacks[::2], callbacks[1::2], strict=True))


def test_io_wait_hooks_pair_up_with_the_timeout_of_the_wait(loop):
    rec = Recorder()
    loop.add_instrument(rec)
    loop.call_soon(lambda: None)
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    waits = [e for e in rec.events if e[0].endswith("io_wait")]
    assert waits and len(waits) % 2 == 0
    for before, after in zip(waits[::2], waits[1::2], strict=True):
        assert before[0] == "before_io_wait" and after[0] == "after_io_wait"
        assert before[1] == after[1]
    timeouts = [e[1] for e in waits[::2]]
    assert timeouts[0] == 0  # a callback was ready: the first pass only checks
    assert any(t is not None and 0 < t <= 0.02 for t in timeouts)  # then it waits for the timer
    # Callbacks run between an after_io_wait and the next before_io_wait, never inside a wait.
    inside = False
    for name, *_ in rec.events:
        inside = {"before_io_wait": True, "after_io_wait": False}.get(name, inside)
        assert not (inside and name == "before_callback")


def test_only_the_hooks_an_instrument_defines_are_called(loop):
    class OnlyBefore:
        def __init__(self):
            self.handles = []

        def before_callback(self, handle):
            self.handles.append(handle)

    class Partial(multiloop.Instrument):  # the base class's no-ops are never called
        def __init__(self):
            self.spawned = []

        def task_spawned(self, task):
            self.spawned.append(task)

    only, partial = OnlyBefore(), Partial()
    loop.add_instrument(only)
    loop.add_instrument(partial)
    loop.add_instrument(only)  # already attached: nothing changes
    assert loop.instruments == (only, partial)

    async def main():
        return 5

    task = loop.create_task(main())
    assert loop.run_until_complete(task) == 5
    assert partial.spawned == [task]
    assert len(only.handles) >= 1 and all(isinstance(h, asyncio.Handle) for h in only.handles)


def test_bad_instruments_are_refused_with_a_clear_error(loop):
    with pytest.raises(TypeError, match="defines none of the instrument hooks"):
        loop.add_instrument(object())
    with pytest.raises(TypeError, match="defines none of the instrument hooks"):
        loop.add_instrument(multiloop.Instrument())
    with pytest.raises(TypeError, match="needs an instance"):
        loop.add_instrument(Recorder)

    class NotCallable:
        before_callback = 3

    with pytest.raises(TypeError, match="before_callback must be a method"):
        loop.add_instrument(NotCallable())
    with pytest.raises(KeyError, match="not attached"):
        loop.remove_instrument(Recorder())
    assert loop.instruments == ()


def test_removing_the_last_instrument_restores_the_plain_pass(loop):
    rec = Recorder()
    loop.add_instrument(rec)
    assert loop._instruments is not None  # the instrumented pass is selected...
    loop.remove_instrument(rec)
    assert loop._instruments is None  # ...and only while something is attached
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert rec.events == []


def test_a_raising_instrument_is_removed_and_reported_and_the_loop_goes_on(loop, errors):
    class Broken:
        def __init__(self):
            self.calls = 0

        def before_callback(self, handle):
            self.calls += 1
            raise ValueError("exporter bug")

    broken, rec = Broken(), Recorder()
    loop.add_instrument(broken)
    loop.add_instrument(rec)
    ran = []
    for i in range(3):
        loop.call_soon(ran.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == [0, 1, 2]  # every callback ran, the first one too
    assert broken.calls == 1  # removed at its first failure
    assert loop.instruments == (rec,)
    assert len(errors) == 1
    context = errors[0]
    assert isinstance(context["exception"], ValueError)
    assert context["instrument"] is broken and context["hook"] == "before_callback"
    assert "Broken" in context["message"] and "before_callback" in context["message"]
    assert sum(1 for e in rec.events if e[0] == "before_callback") == 4  # the other instrument saw every one


def test_an_after_hook_goes_only_to_instruments_that_got_the_before(loop):
    events: list[tuple] = []
    late = Recorder(events, tag="late.")

    class Adder(Recorder):
        def before_callback(self, handle):
            super().before_callback(handle)
            if late not in loop.instruments:
                loop.add_instrument(late)  # attached between a before_callback and its after_callback

    class Leaver(Recorder):
        def before_callback(self, handle):
            super().before_callback(handle)
            loop.remove_instrument(self)  # removes itself: no after_callback for it

    adder, leaver = Adder(events, tag="adder."), Leaver(events, tag="leaver.")
    loop.add_instrument(adder)
    loop.add_instrument(leaver)
    handle = loop.call_soon(lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    mine = [e[0] for e in events if len(e) > 1 and e[1] is handle]
    assert mine == ["adder.before_callback", "leaver.before_callback", "adder.after_callback"]
    assert "late.before_callback" in [e[0] for e in events]  # from the next callback on
    removed_at = [e[0] for e in events].index("leaver.before_callback")
    assert not any(e[0].startswith("leaver.") for e in events[removed_at + 1:])


def test_task_hooks_report_every_task_the_loop_creates(loop):
    rec = Recorder()
    loop.add_instrument(rec)

    async def child(n):
        await asyncio.sleep(0)
        if n == 2:
            raise RuntimeError("child failed")
        return n

    async def main():
        tasks = [asyncio.create_task(child(n), name=f"child-{n}") for n in range(3)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = loop.run_until_complete(main())
    assert results[:2] == [0, 1] and isinstance(results[2], RuntimeError)
    spawned = [e[1] for e in rec.events if e[0] == "task_spawned"]
    exited = [e[1] for e in rec.events if e[0] == "task_exited"]
    assert [t.get_name() for t in spawned[1:]] == ["child-0", "child-1", "child-2"]
    assert set(exited) == set(spawned) and len(exited) == len(spawned)
    for task in spawned:  # each exit comes after its spawn, and only once the task is done
        assert rec.events.index(("task_spawned", task)) < rec.events.index(("task_exited", task))


def test_task_hooks_see_tasks_made_by_a_task_factory(loop):
    made = []

    def factory(lp, coro, **kwargs):
        task = asyncio.Task(coro, loop=lp, **kwargs)
        made.append(task)
        return task

    loop.set_task_factory(factory)
    rec = Recorder()
    loop.add_instrument(rec)

    async def main():
        return await asyncio.create_task(asyncio.sleep(0, "x"), name="made")

    assert loop.run_until_complete(main()) == "x"
    assert [e[1] for e in rec.events if e[0] == "task_spawned"] == made
    assert [e[1] for e in rec.events if e[0] == "task_exited"] == made[::-1]  # inner ends first


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
def test_task_hooks_see_eager_tasks_that_finish_inside_create_task(loop):
    loop.set_task_factory(asyncio.eager_task_factory)
    rec = Recorder()
    loop.add_instrument(rec)

    async def immediate():
        return 7

    async def main():
        task = asyncio.create_task(immediate())
        assert task.done()  # it ran to completion eagerly, inside create_task
        return task, await task

    task, value = loop.run_until_complete(main())
    assert value == 7
    names = [(e[0], e[1]) for e in rec.events if e[0].startswith("task_")]
    assert ("task_spawned", task) in names and ("task_exited", task) in names
    assert names.index(("task_spawned", task)) < names.index(("task_exited", task))


def test_slow_callback_hook_gets_the_handle_and_its_duration_outside_debug_mode(loop):
    loop.slow_callback_duration = 0.05
    rec = Recorder()
    loop.add_instrument(rec)
    slow = loop.call_soon(busy, 0.06)
    fast = loop.call_soon(lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    reports = [e for e in rec.events if e[0] == "slow_callback"]
    assert [e[1] for e in reports] == [slow]
    assert reports[0][2] >= 0.06
    assert ("before_callback", fast) in rec.events
    # slow_callback comes before that callback's after_callback
    assert rec.events.index(reports[0]) == rec.events.index(("after_callback", slow)) - 1


def test_instruments_work_in_debug_mode(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.05
    rec = Recorder()
    loop.add_instrument(rec)
    slow = loop.call_soon(busy, 0.06)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    assert ("before_callback", slow) in rec.events and ("after_callback", slow) in rec.events
    assert [e[1] for e in rec.events if e[0] == "slow_callback"] == [slow]
    assert any("took" in r.getMessage() for r in caplog.records)  # debug mode's own warning still comes


# -- the plugin hook ---------------------------------------------------------------------------------------
class _InstrumentingPlugin:
    def __init__(self, make):
        self.make = make
        self.loops = []

    @multiloop.hookimpl
    def multiloop_instruments(self, loop):
        self.loops.append(loop)
        return self.make(loop)


@pytest.fixture
def plugin():
    """Register a plugin object with the process-wide registry's plugin manager, for one test."""
    registry = get_registry()
    names = []

    def register(obj, name):
        registry.register_plugin(obj, name=name)
        names.append(name)
        return obj

    yield register
    for name in names:
        registry.pm.unregister(name=name)


def test_a_plugin_attaches_instruments_to_every_new_loop(backend, plugin):
    recorders = []
    hooked = plugin(_InstrumentingPlugin(lambda loop: recorders.append(Recorder()) or [recorders[-1]]),
                    "test-exporter")
    loop = multiloop.new_loop(backend)
    try:
        assert hooked.loops == [loop]
        assert loop.instruments == (recorders[0],)

        async def main():
            await asyncio.sleep(0)

        loop.run_until_complete(main())
        assert any(e[0] == "task_spawned" for e in recorders[0].events)
    finally:
        loop.close()


def test_a_broken_plugin_is_reported_and_the_others_still_attach(backend, plugin, caplog):
    def broken(loop):
        raise RuntimeError("exporter misconfigured")

    rec = Recorder()
    plugin(_InstrumentingPlugin(broken), "broken-exporter")
    plugin(_InstrumentingPlugin(lambda loop: "not a list"), "wrong-type")
    plugin(_InstrumentingPlugin(lambda loop: [rec]), "good-exporter")
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop = multiloop.new_loop(backend)
    try:
        assert loop.instruments == (rec,)
        messages = [r.getMessage() for r in caplog.records]
        assert any("'broken-exporter'" in m and "exporter misconfigured" in m for m in messages), messages
        assert any("'wrong-type'" in m and "expected a list of instruments" in m for m in messages), messages
    finally:
        loop.close()


def test_debug_mode_and_instruments_switch_the_pass_independently(loop, caplog):
    loop.slow_callback_duration = 0.02
    rec = Recorder()
    loop.set_debug(True)
    loop.add_instrument(rec)
    loop.set_debug(False)  # the instrument still needs the hooked pass
    handle = loop.call_soon(lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ("before_callback", handle) in rec.events
    loop.set_debug(True)
    loop.remove_instrument(rec)  # debug mode still needs it
    loop.call_soon(busy, 0.03)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    assert any("took" in r.getMessage() for r in caplog.records)
    loop.set_debug(False)
    assert not loop._hooked_pass and loop._instruments is None  # back to the plain pass
