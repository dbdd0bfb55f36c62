"""Make a program's ``asyncio.run`` / ``asyncio.Runner`` / ``asyncio.new_event_loop`` create multiloop loops,
without event-loop policies (deprecated in 3.14, removed in 3.16).

Facts (CPython 3.11 to 3.15, ``Lib/asyncio/runners.py`` and ``events.py``):

- ``asyncio.run(main)`` is ``with Runner(debug=...) as r: r.run(main)``; on 3.11 it has no ``loop_factory``.
- A ``Runner`` without ``loop_factory`` creates its loop with ``events.new_event_loop()``, looked up in the
  ``asyncio.events`` module at call time, and then makes it the current loop (``set_event_loop``) and clears it
  on close. With a ``loop_factory`` it does neither.
- ``asyncio.new_event_loop`` is the same function re-exported by the package: two bindings.
- Before 3.14, ``asyncio.get_event_loop()`` outside a running loop still creates one through the policy (old
  ``loop = get_event_loop(); loop.run_until_complete(...)`` programs); from 3.14 it no longer does.

Design: replace both bindings of ``new_event_loop`` with our factory for the duration of the program, so a
Runner without a factory keeps its exact stock behaviour (current-loop bookkeeping included) but gets a multiloop
loop, and ``asyncio.run`` follows on every version. A ``loop_factory`` the program passes itself is respected.
Only on Pythons before 3.14, where policies are the normal mechanism, the policy is swapped too, for the
``get_event_loop()`` programs. Everything is restored on exit. ``tests/test_cli_run.py`` checks these facts on
each Python, so a release that changes them fails loudly.
"""

from __future__ import annotations

import asyncio
import asyncio.events as _events
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


@contextmanager
def multiloop_as_default(factory: LoopFactory) -> Iterator[None]:
    """While active, asyncio's default loop creation calls ``factory``."""

    def new_event_loop() -> asyncio.AbstractEventLoop:
        return factory()

    new_event_loop.__doc__ = f"multiloop (python -m multiloop run): {factory!r}"
    saved = (_events.new_event_loop, asyncio.new_event_loop)
    _events.new_event_loop = asyncio.new_event_loop = new_event_loop
    restore_policy = _swap_policy(factory) if sys.version_info < (3, 14) else None
    try:
        yield
    finally:
        _events.new_event_loop, asyncio.new_event_loop = saved
        if restore_policy is not None:
            restore_policy()


def _swap_policy(factory: LoopFactory) -> Callable[[], None]:
    """Pythons before 3.14 only: a default policy whose loops come from ``factory``; returns the undo."""

    class Policy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            return factory()

    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(Policy())

    def restore() -> None:
        asyncio.set_event_loop_policy(previous)

    return restore
