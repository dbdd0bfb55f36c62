"""multiloop-trio: a multiloop backend that waits with trio, and a bridge between asyncio and trio code.

- ``multiloop.new_loop("trio")`` / ``multiloop.run(main(), backend="trio")``: an ordinary asyncio loop
  (multiloop's core: scheduler, timers, transports) with trio running as its guest in the same thread.
- ``async with open_loop() as loop:`` inside a running trio program: an asyncio loop on that trio run.
- ``await aio_as_trio(async_fn)(*args)`` runs asyncio code from trio; ``await trio_as_aio(trio_fn)(*args)``
  runs trio code from asyncio. Results, exceptions and cancellation cross both ways.
- ``run(async_fn, *args)``: ``trio.run`` with a loop open.
"""

from __future__ import annotations

from ._adapters import aio_as_trio, trio_as_aio
from ._embed import DEFAULT_SHUTDOWN_TIMEOUT, open_loop, run
from ._poller import TrioPoller, current_poller

__version__ = "0.1.0"

__all__ = ["open_loop", "run", "aio_as_trio", "trio_as_aio", "TrioPoller", "current_poller",
           "DEFAULT_SHUTDOWN_TIMEOUT"]
