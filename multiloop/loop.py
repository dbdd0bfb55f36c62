"""The event loop class users get: the core plus the networking and Unix feature mixins.

The mixins only use the core's documented internal seams (``_add_reader``/``_remove_reader``/``_add_writer``/
``_remove_writer``, ``_transports``, ``_check_closed``); none of them knows which backend is waiting.
"""

from __future__ import annotations

from .core import LoopCore
from .net import NetworkMixin
from .unix import UnixMixin


class EventLoop(UnixMixin, NetworkMixin, LoopCore):
    """An ``asyncio.AbstractEventLoop`` whose waiting is done by a pluggable backend (``loop.backend``)."""
