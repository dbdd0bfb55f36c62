"""Calling across the bridge: ``aio_as_trio`` (asyncio code from trio) and ``trio_as_aio`` (trio code from
asyncio), with the call forms trio-asyncio users know.

Facts:

- Both sides run in one thread, in one trio run: asyncio callbacks run inside the trio task that drives the
  loop; trio code runs in ordinary trio tasks. So crossing is never a thread hop, only "start a task on the
  other side and wait for it", and waking the other side is a plain trio reschedule or a loop callback.
- Cancellation must cross too, and structured concurrency means the caller may not return before the callee
  has finished unwinding: a cancelled trio caller cancels the asyncio task and waits (shielded) until it is
  done; a cancelled asyncio caller cancels the trio task's cancel scope and waits until it is done. Only
  then is the cancellation re-raised on the caller's side.
- A caller must never wait for a loop that no longer runs (the driver failed, or shutdown stopped it): the
  trio side's wait also ends when the loop's passes stop (``TrioPoller.add_drive_stop_waiter``).
- asyncio's CancelledError cannot become trio.Cancelled (trio creates those itself); an asyncio task that
  was cancelled from the asyncio side surfaces in trio as ``asyncio.CancelledError``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

import trio

from ._poller import TrioPoller, current_poller

P = ParamSpec("P")
T = TypeVar("T")


def _current() -> tuple[asyncio.AbstractEventLoop, TrioPoller]:
    poller = current_poller()
    if poller is None:
        raise RuntimeError("no multiloop trio loop is running in this thread: use "
                           "'async with multiloop_trio.open_loop()' (or multiloop_trio.run) first")
    loop = asyncio.get_running_loop()
    return loop, poller


# ------------------------------------------------------------------------------------- asyncio from trio
@overload
def aio_as_trio(proc: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]: ...
@overload
def aio_as_trio(proc: Awaitable[T]) -> Coroutine[Any, Any, T]: ...


def aio_as_trio(proc: Any) -> Any:
    """Run asyncio code from trio code.

    ``await aio_as_trio(async_fn)(*args)`` runs ``async_fn(*args)`` as an asyncio task and returns its
    result; also a decorator. ``await aio_as_trio(coro_or_future)`` awaits an asyncio awaitable (the
    trio-asyncio form). Cancelling the trio caller cancels the asyncio task.
    """
    if inspect.isawaitable(proc):
        return _await_aio(proc)
    if not callable(proc):
        raise TypeError(f"aio_as_trio() needs an async function or an awaitable, not {proc!r}")

    @functools.wraps(proc)
    async def call_asyncio(*args: Any, **kwargs: Any) -> Any:
        _current()
        return await _await_aio(proc(*args, **kwargs))

    return call_asyncio


async def _await_aio(awaitable: Any) -> Any:
    loop, poller = _current()
    fut = asyncio.ensure_future(awaitable, loop=loop)
    done = trio.Event()
    fut.add_done_callback(lambda _: done.set())  # runs inside a loop pass, i.e. in trio context
    try:
        await _wait(done, poller)
    except trio.Cancelled:
        fut.cancel()
        with trio.CancelScope(shield=True):
            await _wait(done, poller)
        if fut.done() and not fut.cancelled() and fut.exception() is not None:
            raise fut.exception() from None  # it failed while cancelling: that is news, report it
        raise
    if not fut.done():
        fut.cancel()
        raise RuntimeError("the multiloop trio loop stopped running before the asyncio task finished")
    return fut.result()


async def _wait(done: trio.Event, poller: TrioPoller) -> None:
    """Wait for ``done``, or until nobody runs the loop's passes any more (nothing could set it then)."""
    if done.is_set() or not poller.driving:
        await trio.lowlevel.checkpoint()
        return
    poller.add_drive_stop_waiter(done)
    try:
        await done.wait()
    finally:
        poller.discard_drive_stop_waiter(done)


# ------------------------------------------------------------------------------------- trio from asyncio
def trio_as_aio(proc: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Run trio code from asyncio code: ``await trio_as_aio(trio_fn)(*args)``; also a decorator.

    The trio function runs in a trio task of the loop's trio run, in a cancel scope that is cancelled when
    the awaiting asyncio task is cancelled. Its contextvars are those of the calling asyncio task.
    """
    if not callable(proc):
        raise TypeError(f"trio_as_aio() needs an async function, not {proc!r}")

    @functools.wraps(proc)
    async def call_trio(*args: Any, **kwargs: Any) -> Any:
        loop, poller = _current()
        fut = loop.create_future()
        scope = trio.CancelScope()
        call = functools.partial(proc, *args, **kwargs)
        poller.spawn(_run_trio_side, call, fut, scope,
                     name=f"trio_as_aio({getattr(proc, '__qualname__', proc)!r})")
        cancelled: asyncio.CancelledError | None = None
        while not fut.done():
            try:
                await asyncio.wait((fut,))
            except asyncio.CancelledError as exc:
                cancelled = exc  # keep waiting until the trio side has unwound
                scope.cancel()
        if cancelled is not None:
            error = None if fut.cancelled() else fut.exception()
            if error is not None:
                raise error from None
            raise cancelled
        return fut.result()

    return call_trio


async def _run_trio_side(call: Callable[[], Awaitable[Any]], fut: asyncio.Future[Any],
                         scope: trio.CancelScope) -> None:
    with scope:
        try:
            result = await call()
        except trio.Cancelled:
            if not fut.done():
                fut.cancel()
            raise  # absorbed by ``scope`` if it was ours, else it belongs to the trio side's canceller
        except BaseException as exc:  # noqa: BLE001 - delivered to the asyncio caller, not lost
            if not fut.done():
                if isinstance(exc, StopIteration):  # a Future refuses StopIteration
                    exc = RuntimeError(f"trio function raised StopIteration: {exc!r}")
                fut.set_exception(exc)
        else:
            if not fut.done():
                fut.set_result(result)
