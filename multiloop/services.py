"""Loop services that are not on the hot path: executors, async generator finalisation, the exception
handler API, debug mode, name resolution. A mixin of :class:`multiloop.core.LoopCore`, kept apart so the core
module is only the scheduler and the fd table."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import sys
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, TypeVarTuple, Unpack

from .callbacks import check_callback
from .dns import resolve_numeric as _resolve_numeric
from .exceptions import log_exception_context
from .seams import Loop

logger = logging.getLogger("asyncio")

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


class LoopServices(Loop):
    """Executors, async generators, exception handling, debug, DNS. State is set up by ``_init_services``."""

    _debug: bool
    _current_handle: asyncio.Handle | None

    def _update_hooked_pass(self) -> None:
        """Debug mode changed: the core re-decides which pass it runs (``LoopCore`` overrides this)."""

    def _init_services(self) -> None:
        self._exception_handler: Callable[..., Any] | None = None
        # Name kept from stock asyncio: CPython's test harness (test_utils.TestCase.close_loop) reads it.
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth: int | None = None

    def _forget_executor_after_fork(self) -> None:
        """Drop the default executor in a forked child (an ``os.register_at_fork`` hook); never shut it down.

        Its worker threads are the parent's and do not exist here, so there is nothing to shut down; and
        ``shutdown()`` can hang forever here: it takes the executor's lock, which ``submit()`` in another
        thread of the parent holds a moment longer than the module lock concurrent.futures makes fork() wait
        for, while the worker that submit() just started may already be running the call that forks (on a
        free-threaded build a fork lands in that gap often). The child cannot use the executor anyway:
        ``run_in_executor`` refuses on a forked loop."""
        self._default_executor = None

    def _shutdown_executor_nowait(self) -> None:
        self._executor_shutdown_called = True
        executor, self._default_executor = self._default_executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    # ------------------------------------------------------------------------------------- executors
    def run_in_executor(self, executor: concurrent.futures.Executor | None, func: Callable[[Unpack[_Ts]], _T],
                        *args: *_Ts) -> asyncio.Future[_T]:
        self._check_closed()
        if self._debug:
            check_callback(func, "run_in_executor")
        if executor is None:
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            executor = self._default_executor
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: Any) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Join the default executor's threads without blocking the loop (in a helper thread)."""
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = self.create_future()

        def join() -> None:
            try:
                executor.shutdown(wait=True)
            finally:
                if not self.is_closed():
                    self.call_soon_threadsafe(_set_result_unless_done, done)

        joiner = threading.Thread(target=join, name="multiloop-executor-shutdown")
        joiner.start()
        try:
            async with asyncio.timeout(timeout):
                await done
        except TimeoutError:
            warnings.warn(f"The executor did not finishing joining its threads within {timeout} seconds.",
                          RuntimeWarning, stacklevel=2)
            executor.shutdown(wait=False)
        else:
            joiner.join()

    # --------------------------------------------------------------------------------------- asyncgens
    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(f"asynchronous generator {agen!r} was scheduled after loop.shutdown_asyncgens() call",
                          ResourceWarning, stacklevel=2, source=self)
        self._asyncgens.add(agen)

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    async def shutdown_asyncgens(self) -> None:
        self._asyncgens_shutdown_called = True
        agens = list(self._asyncgens)
        if not agens:
            return
        self._asyncgens.clear()
        outcomes = await asyncio.gather(*(agen.aclose() for agen in agens), return_exceptions=True)
        for agen, outcome in zip(agens, outcomes, strict=True):
            if isinstance(outcome, Exception):
                self.call_exception_handler({
                    "message": f"an error occurred during closing of asynchronous generator {agen!r}",
                    "exception": outcome, "asyncgen": agen})

    # ----------------------------------------------------------------------------------- error handling
    def get_exception_handler(self) -> Callable[..., Any] | None:
        return self._exception_handler

    def set_exception_handler(self, handler: Callable[..., Any] | None) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        log_exception_context(self, context, self._current_handle)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            # Run the custom handler in the context of the task/future/handle that failed (CPython 3.12+,
            # gh-96704; get_context() exists from 3.12 on, so on 3.11 this is the plain call stock makes).
            thing = context.get("task") or context.get("future") or context.get("handle")
            ctx = thing.get_context() if thing is not None and hasattr(thing, "get_context") else None
            if ctx is not None and hasattr(ctx, "run"):
                ctx.run(handler, self, context)
            else:
                handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    "message": "Unhandled error in exception handler", "exception": exc, "context": context})
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler while handling an unexpected error "
                             "in custom exception handler", exc_info=True)

    # ------------------------------------------------------------------------------------------- debug
    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = bool(enabled)
        self._update_hooked_pass()
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, self._debug)

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if bool(enabled) == self._coroutine_origin_tracking_enabled:
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(10)
        else:
            sys.set_coroutine_origin_tracking_depth(self._coroutine_origin_tracking_saved_depth or 0)
        self._coroutine_origin_tracking_enabled = bool(enabled)

    # ------------------------------------------------------------------------------------------- DNS
    async def getaddrinfo(self, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0,
                          flags: int = 0) -> list[Any]:
        # multiloop.dns: numeric hosts are answered inline (no thread), here rather than in a second coroutine.
        result = _resolve_numeric(host, port, family, type, proto, flags)
        if result is not None:
            return result
        return await self.run_in_executor(None, socket.getaddrinfo, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)


def _set_result_unless_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
