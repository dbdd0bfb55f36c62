"""Async generator hooks while asyncio code and trio code share one thread and one trio run.

Facts:

- ``sys.set_asyncgen_hooks`` is per thread: one ``firstiter`` and one ``finalizer`` for every async generator
  first iterated in the thread. asyncio's (the loop's) register the generator with the loop and close it in
  a loop task; trio's close it in a trio system task.
- ``trio.run`` installs hooks that claim every generator first iterated inside *any* trio task: asyncio code
  run by a trio task (the loop's passes inside ``trio.run`` or ``open_loop``) would have its generators closed
  by trio. A guest run's hooks pass on generators first iterated outside trio tasks, but only those of the
  current run: one first iterated in an earlier ``run_forever`` and collected in a later one would be claimed.
- A finalizer runs after the generator's weak references are cleared, so the generators are remembered by id
  (a dead one's id is purged from time to time: generators that ran to completion are never finalized).

Design: while the loop is attached to a trio run, hooks that send a generator to asyncio's hooks if it was
first iterated while the loop's callbacks ran (``in_asyncio``, set around each pass's dispatch), else to
trio's. The set of asyncio's generators outlives runs.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any


class AsyncGenRouting:
    """Install with :meth:`install` when a run starts, :meth:`restore` before it ends."""

    __slots__ = ("in_asyncio", "_saved", "_agens", "_purge_at")

    def __init__(self) -> None:
        self.in_asyncio = False
        self._saved: Any = None
        self._agens: dict[int, weakref.ref[Any]] = {}
        self._purge_at = 64

    def install(self, aio_hooks: Any, trio_hooks: Any) -> None:
        """Route between ``aio_hooks`` (the loop's) and ``trio_hooks``; :meth:`restore` puts back the current."""
        self._saved = sys.get_asyncgen_hooks()
        aio_first, aio_final = aio_hooks
        trio_first, trio_final = trio_hooks
        agens = self._agens

        def firstiter(agen: Any) -> None:
            if self.in_asyncio:
                agens[id(agen)] = weakref.ref(agen)
                if len(agens) > self._purge_at:
                    self._purge()
                if aio_first is not None:
                    aio_first(agen)
            elif trio_first is not None:
                trio_first(agen)

        def finalizer(agen: Any) -> None:
            if agens.pop(id(agen), None) is not None:
                if aio_final is not None:
                    aio_final(agen)
            elif trio_final is not None:
                trio_final(agen)

        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)

    def restore(self) -> None:
        """Put back the hooks found by :meth:`install`; nothing if not installed."""
        saved, self._saved = self._saved, None
        if saved is not None:
            sys.set_asyncgen_hooks(*saved)

    def _purge(self) -> None:
        agens = self._agens
        for key in [k for k, ref in agens.items() if ref() is None]:
            del agens[key]
        self._purge_at = max(64, 2 * len(agens))
