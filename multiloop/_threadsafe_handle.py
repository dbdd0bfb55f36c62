"""The handle ``call_soon_threadsafe`` returns: cancellable from any thread, safely.

Facts:
- A plain ``asyncio.Handle`` is not thread-safe: another thread's ``cancel()`` can land while the loop thread is
  between "not cancelled?" and running the callback, and ``cancel()`` clears ``_callback``/``_args`` under it.
- CPython 3.14 (and later 3.12/3.13 patch releases) return ``asyncio.events._ThreadSafeHandle`` from
  ``call_soon_threadsafe``: a Handle with a per-handle re-entrant lock held by ``cancel()``, ``cancelled()``
  and ``_run()``, so a cancel from another thread waits until a running callback returns, and a cancelled
  handle never runs. Its own tests check ``isinstance(handle, asyncio.events._ThreadSafeHandle)``.

So: where asyncio has that private class, we use it (this module is the only place that names it;
``tests/test_threadsafe_handle.py`` fails loudly if a release changes its shape); on Pythons without it, an
equivalent of our own (an addition: those Pythons' stock handles are not thread-safe).
"""

from __future__ import annotations

import asyncio
import threading
from asyncio import events as _aio_events
from typing import Any


class _OwnThreadSafeHandle(asyncio.Handle):
    """A Handle whose cancel/cancelled/_run exclude each other across threads (Pythons before 3.14)."""

    __slots__ = ("_lock",)

    def __init__(self, callback: Any, args: Any, loop: Any, context: Any = None) -> None:
        super().__init__(callback, args, loop, context)
        self._lock = threading.RLock()

    def cancel(self) -> None:
        with self._lock:
            super().cancel()

    def cancelled(self) -> bool:
        with self._lock:
            return super().cancelled()

    def _run(self) -> None:
        # The loop tested _cancelled without the lock; a cancel may have landed since.
        with self._lock:
            if not self._cancelled:
                super()._run()


ThreadSafeHandle: type[asyncio.Handle] = getattr(_aio_events, "_ThreadSafeHandle", _OwnThreadSafeHandle)
IS_ASYNCIO_CLASS = ThreadSafeHandle is not _OwnThreadSafeHandle
