"""An asyncio loop inside an already running trio program: ``open_loop()`` and ``run()``.

Facts:

- ``loop.enter_running()`` (the core's public seam) makes the loop asyncio's running loop *for the thread*,
  so while ``open_loop`` is active, ``asyncio.get_running_loop()`` works in trio code too; that is how the
  adapters find the loop. It also replaces the thread's async generator hooks; the poller routes them
  (asyncio's hooks for generators first iterated by asyncio code, trio's for the rest).
- With trio's strict exception groups (the default), an exception leaving a nursery is always wrapped in an
  ExceptionGroup, even a single one. ``async with open_loop():`` must not turn the body's ``ValueError``
  into ``ExceptionGroup([ValueError])``, so the tasks we start never raise into the nursery, and a group that
  only carries the body's own exception (plus cancellations) is unwrapped.
- Shutdown needs the loop to keep running (asyncio tasks handle their CancelledError, connections close),
  possibly while the surrounding trio code is being cancelled, or after the driving task died of a
  KeyboardInterrupt. So shutdown runs the loop's passes itself, inside a shielded cancel scope, until the
  shutdown coroutine is done; and it is bounded (``shutdown_timeout``) for tasks that ignore cancellation.

Design: one trio task (the *driver*, shielded, stopped by cancelling its own scope) runs the loop's passes
while the body runs. If it fails (KeyboardInterrupt or SystemExit out of asyncio code) or asyncio code calls
``loop.stop()``, it cancels the body; ``open_loop`` then shuts down and re-raises the failure. On exit:
stop the driver, cancel the remaining asyncio tasks and wait for them (bounded), close async generators and
the default executor, detach from trio, close the loop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

import multiloop

from ._poller import TrioPoller, current_poller

T = TypeVar("T")
logger = logging.getLogger("multiloop.trio")

#: Seconds ``open_loop`` waits at exit for cancelled asyncio tasks to finish before giving up on them.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0


class _Embedding:
    """The state of one ``open_loop``: the loop, its poller, the driver task and how it ended."""

    def __init__(self, loop: multiloop.EventLoop, poller: TrioPoller) -> None:
        self.loop = loop
        self.poller = poller
        self.body_scope = trio.CancelScope()
        self.driver_scope = trio.CancelScope(shield=True)
        self.driver_done = trio.Event()
        self.failure: BaseException | None = None

    async def drive(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with self.driver_scope:
                try:
                    task_status.started()  # the passes start before the caller resumes (no checkpoint)
                    await self.poller._run_passes(self.loop.iteration)
                except trio.Cancelled:
                    raise  # our own scope (shielded from everything else): shutdown is taking over
                except BaseException as exc:  # noqa: BLE001 - re-raised by open_loop, unwrapped
                    self.failure = exc
                # Here the loop stopped by itself: loop.stop(), or a failure. Either way the body ends.
                self.body_scope.cancel()
        finally:
            self.driver_done.set()

    async def shutdown(self, timeout: float) -> None:
        """Shielded by the caller. Stop the driver, then run the loop here until asyncio has wound down."""
        self.driver_scope.cancel()
        await self.driver_done.wait()
        loop = self.loop
        try:
            done = loop.create_task(_shutdown_asyncio(loop, timeout))
            await self.poller._run_passes(loop.iteration, until=done.done)
            if not done.cancelled() and done.exception() is not None:
                loop.call_exception_handler({"message": "multiloop_trio.open_loop: error during shutdown",
                                             "exception": done.exception()})
        finally:
            self.poller._detach()


async def _shutdown_asyncio(loop: asyncio.AbstractEventLoop, timeout: float) -> None:
    """asyncio.run's epilogue, bounded: a task that ignores cancellation cannot hang the trio program."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks(loop) if t is not me]
    for t in tasks:
        t.cancel()
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                loop.call_exception_handler({"message": "unhandled exception during open_loop() shutdown",
                                             "exception": t.exception(), "task": t})
        for t in pending:
            loop.call_exception_handler({"message": f"asyncio task still running {timeout} s after "
                                                    f"open_loop() cancelled it; abandoned", "task": t})
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


@asynccontextmanager
async def open_loop(*, shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
                    debug: bool | None = None) -> AsyncIterator[multiloop.EventLoop]:
    """``async with open_loop() as loop:`` -- an asyncio loop running on the current trio run.

    Inside the block, asyncio code runs through :func:`aio_as_trio` (or tasks created on ``loop``), and its
    asyncio code may call back into trio through :func:`trio_as_aio`. On exit, remaining asyncio tasks are
    cancelled and awaited (at most ``shutdown_timeout`` seconds), async generators and the default executor
    are shut down, and the loop is closed. One loop per trio run.
    """
    trio.lowlevel.current_task()  # RuntimeError outside trio, before anything is created
    if current_poller() is not None:
        raise RuntimeError("open_loop(): this trio run already has a multiloop loop open (one per run)")
    poller = TrioPoller()
    loop = multiloop.EventLoop(poller)
    if debug is not None:
        loop.set_debug(debug)
    embedding = _Embedding(loop, poller)
    body_exc: BaseException | None = None
    to_raise: BaseException | None = None
    try:
        trio_hooks = sys.get_asyncgen_hooks()
        with loop.enter_running():
            aio_hooks = sys.get_asyncgen_hooks()
            try:
                async with trio.open_nursery() as nursery:
                    poller._attach(nursery, aio_hooks, trio_hooks)
                    await nursery.start(embedding.drive, name="multiloop-trio loop driver")
                    try:
                        with embedding.body_scope:
                            try:
                                yield loop
                            except BaseException as exc:
                                body_exc = exc
                                raise
                    finally:
                        try:
                            with trio.CancelScope(shield=True):
                                await embedding.shutdown(shutdown_timeout)
                        finally:
                            nursery.cancel_scope.cancel()  # trio_as_aio leftovers: their asyncio side is gone
            except BaseExceptionGroup as group:
                to_raise = _unwrap(group, body_exc)
                if to_raise is None:
                    raise
    finally:
        if poller._attached:
            poller._detach()
        loop.close()
    if to_raise is not None:
        raise to_raise  # outside the except block: no "during handling of ExceptionGroup" chaining
    if embedding.failure is not None:
        failure, embedding.failure = embedding.failure, None
        raise failure


def _unwrap(group: BaseExceptionGroup, body_exc: BaseException | None) -> BaseException | None:
    """The single exception a group stands for: the body's own (beside cancellations), or one Cancelled."""
    leaves = list(_leaves(group))
    others = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    if not others:
        return leaves[0] if leaves else None
    if len(others) == 1 and others[0] is body_exc:
        return body_exc
    return None


def _leaves(group: BaseExceptionGroup) -> Any:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def run(async_fn: Callable[..., Awaitable[T]], *args: Any, shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        **trio_run_kwargs: Any) -> T:
    """``trio.run(async_fn, *args)`` with a multiloop asyncio loop open for the whole run."""

    async def main() -> T:
        async with open_loop(shutdown_timeout=shutdown_timeout):
            return await async_fn(*args)

    return trio.run(main, **trio_run_kwargs)
