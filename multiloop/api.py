"""The public entry points: make a loop, run a coroutine, plug into asyncio.Runner and anyio.

(``multiloop.EventLoopPolicy``, for code that still uses policies, lives in :mod:`multiloop.policy`.)"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from .loop import EventLoop
from .registry import BackendInfo, get_registry

T = TypeVar("T")


def new_loop(backend: str | None = None, *, require: Iterable[str] = (), avoid: Iterable[str] = ()) -> EventLoop:
    """A new, not running event loop on ``backend`` (a name), or on the best backend available here.

    ``require``: capability names the backend must have (``multiloop.Capability``). ``avoid``: backend
    names never to pick automatically. Errors say which backends exist and why each was not chosen.
    """
    descriptor = get_registry().choose(backend, require=require, avoid=avoid)
    return EventLoop(descriptor.factory())


def loop_factory(backend: str | None = None, **kwargs: Any) -> Callable[[], EventLoop]:
    """A zero-argument loop factory, for ``asyncio.Runner(loop_factory=...)``, ``asyncio.run(...,
    loop_factory=...)`` (3.12+) and anyio's ``backend_options={"loop_factory": ...}``.

    The choice is checked now, so a bad backend name fails where the factory is made, not later."""
    get_registry().choose(backend, **kwargs)
    factory = functools.partial(new_loop, backend, **kwargs)
    factory.__doc__ = f"multiloop.new_loop(backend={backend!r})"
    return factory


def run(main: Coroutine[Any, Any, T], *, backend: str | None = None, debug: bool | None = None,
        require: Iterable[str] = (), avoid: Iterable[str] = ()) -> T:
    """Like ``asyncio.run``: run ``main`` on a new multiloop loop, then shut down async generators and
    the default executor and close the loop. Ctrl-C cancels the main task first, then raises
    KeyboardInterrupt (this is ``asyncio.Runner``'s behaviour, which is used as is)."""
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    factory = loop_factory(backend, require=require, avoid=avoid)
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)


def backends() -> list[BackendInfo]:
    """Every known backend, available or not (with the reason), best first; then broken plugins."""
    registry = get_registry()
    rows = registry.infos()
    for broken in registry.broken:
        rows.append(BackendInfo(name=broken.name, available=False, reason=f"broken plugin: {broken.error}",
                                priority=0, capabilities=frozenset(), origin=broken.origin, auto=False,
                                description="plugin failed to load"))
    return rows


def default_backend(*, require: Iterable[str] = (), avoid: Iterable[str] = ()) -> str:
    """The name of the backend ``new_loop()`` would pick right now (honours the environment variables)."""
    return get_registry().choose(None, require=require, avoid=avoid).name
