"""``create_task`` and task factories, as each Python's stock loop behaves: 3.14 passes every keyword
(``eager_start`` included) to the factory or to ``asyncio.Task``; 3.11-3.13 call a factory with
``(loop, coro[, context=])`` and set the name afterwards."""

from __future__ import annotations

import asyncio
import contextvars
import sys

import pytest

PY314 = sys.version_info >= (3, 14)
needs_314 = pytest.mark.skipif(not PY314, reason="create_task(**kwargs) is Python 3.14's API")


@needs_314
def test_create_task_eager_start_runs_the_coroutine_to_its_first_suspension_at_once(loop, run):
    steps = []

    async def child():
        steps.append("child started")
        await asyncio.sleep(0)
        steps.append("child resumed")
        return "done"

    async def main():
        eager = loop.create_task(child(), eager_start=True)
        steps.append("after eager create_task")
        lazy = loop.create_task(child(), eager_start=False)
        steps.append("after lazy create_task")
        return await eager, await lazy

    assert run(main()) == ("done", "done")
    assert steps[:3] == ["child started", "after eager create_task", "after lazy create_task"]


@needs_314
def test_an_eager_task_that_finishes_at_once_is_done_when_create_task_returns(loop, run):
    async def quick():
        return 42

    async def main():
        task = loop.create_task(quick(), eager_start=True, name="quick")
        return task.done(), task.result(), task.get_name()

    assert run(main()) == (True, 42, "quick")


@needs_314
def test_every_create_task_keyword_reaches_the_task_factory(loop, run):
    received = []

    def factory(lp, coro, **kwargs):
        received.append(dict(kwargs))
        kwargs.pop("priority", None)  # a keyword only this factory understands
        return asyncio.Task(coro, loop=lp, **kwargs)

    loop.set_task_factory(factory)
    ctx = contextvars.copy_context()

    async def main():
        task = loop.create_task(asyncio.sleep(0, "x"), name="n", context=ctx, eager_start=False, priority=7)
        return task.get_name(), await task

    assert run(main()) == ("n", "x")
    assert {"name": "n", "context": ctx, "eager_start": False, "priority": 7} in received


@needs_314
def test_eager_task_factory_honours_eager_start_false_and_names(loop, run):
    loop.set_task_factory(asyncio.eager_task_factory)
    order = []

    async def child(tag):
        order.append(tag)
        return asyncio.current_task().get_name()

    async def main():
        a = loop.create_task(child("eager"), name="a")
        b = loop.create_task(child("lazy"), name="b", eager_start=False)
        order.append("main")
        return await a, await b

    assert run(main()) == ("a", "b")
    assert order == ["eager", "main", "lazy"]


@pytest.mark.skipif(PY314, reason="3.11-3.13 semantics")
def test_before_314_a_factory_gets_loop_and_coro_and_the_name_is_set_afterwards(loop, run):
    calls = []

    def factory(lp, coro):  # the signature factories written for 3.11-3.13 have
        calls.append(lp)
        return asyncio.Task(coro, loop=lp)

    loop.set_task_factory(factory)

    async def main():
        task = loop.create_task(asyncio.sleep(0), name="named-later")
        await task
        return task.get_name()

    assert run(main()) == "named-later"
    assert calls and all(lp is loop for lp in calls)


@pytest.mark.skipif(PY314, reason="3.11-3.13 semantics")
def test_before_314_create_task_refuses_unknown_keywords(loop):
    coro = asyncio.sleep(0)
    with pytest.raises(TypeError):
        loop.create_task(coro, eager_start=True)
    coro.close()


def test_create_task_on_a_closed_loop_is_refused(backend):
    import multiloop

    lp = multiloop.new_loop(backend)
    lp.close()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        lp.create_task(coro)
    coro.close()
