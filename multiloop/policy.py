"""``multiloop.EventLoopPolicy``: for code that still configures asyncio through event loop policies.

Facts:
- asyncio's policy system is deprecated in Python 3.14 and removed in 3.16: on 3.14/3.15 merely reading
  ``asyncio.DefaultEventLoopPolicy`` emits a DeprecationWarning (asyncio's module ``__getattr__``), which
  ``-W error`` turns into an ImportError of whatever subclasses it at import time.
- ``asyncio.set_event_loop_policy`` (3.14+) accepts only instances of asyncio's policy base class, so a
  policy must still subclass asyncio's default policy to be usable at all.

So the class is built on first use (``multiloop.EventLoopPolicy`` goes through a module ``__getattr__``),
never by ``import multiloop``. Building it does not warn: the deprecated parts a user really touches
(``asyncio.set_event_loop_policy``/``get_event_loop_policy``) warn by themselves, as they do with stock
asyncio. On Python 3.16+ there is no policy to subclass and asking for the class is a clear AttributeError.
Nothing else in multiloop uses policies.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any

POLICIES_DEPRECATED = sys.version_info >= (3, 14)

_lock = threading.Lock()
_built: type | None = None


if TYPE_CHECKING:
    class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
        def __init__(self, backend: str | None = None, **kwargs: Any) -> None: ...


def _asyncio_default_policy() -> Any:
    if not POLICIES_DEPRECATED:
        return asyncio.DefaultEventLoopPolicy
    with warnings.catch_warnings():
        # Only asyncio's own warning about the base class we have to subclass; anything else still shows.
        warnings.filterwarnings("ignore", message=r".*asyncio\.DefaultEventLoopPolicy", category=DeprecationWarning)
        base = getattr(asyncio, "DefaultEventLoopPolicy", None)
    if base is None:
        raise AttributeError(
            f"multiloop.EventLoopPolicy needs asyncio's event loop policies, which Python "
            f"{sys.version_info[0]}.{sys.version_info[1]} no longer has; use multiloop.loop_factory() with "
            f"asyncio.run(..., loop_factory=...) or asyncio.Runner(loop_factory=...)")
    return base


def event_loop_policy_class() -> type:
    """The ``multiloop.EventLoopPolicy`` class, built once (thread-safe) on first use."""
    global _built
    if _built is not None:
        return _built
    with _lock:
        if _built is None:
            _built = _build(_asyncio_default_policy())
        return _built


def _build(base: Any) -> type:
    from .api import loop_factory

    class EventLoopPolicy(base):
        """For code that still configures asyncio through policies: every new loop is a multiloop loop on
        ``backend`` (or the best one here). Policies are deprecated since Python 3.14 and gone in 3.16:
        prefer ``multiloop.loop_factory()``."""

        def __init__(self, backend: str | None = None, **kwargs: Any) -> None:
            super().__init__()
            self._factory = loop_factory(backend, **kwargs)

        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            loop: asyncio.AbstractEventLoop = self._factory()
            return loop

    EventLoopPolicy.__module__ = "multiloop"
    EventLoopPolicy.__qualname__ = "EventLoopPolicy"
    return EventLoopPolicy
