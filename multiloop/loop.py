"""The event loop class users get: the core plus the networking and Unix feature mixins.

The mixins use only what :mod:`multiloop.seams` declares of the core (every part of the class derives from
``seams.Loop``); none of them knows which backend is waiting.
"""

from __future__ import annotations

from .core import LoopCore
from .net import NetworkMixin
from .unix import UnixMixin


class EventLoop(UnixMixin, NetworkMixin, LoopCore):
    """An ``asyncio.AbstractEventLoop`` whose waiting is done by a pluggable backend (``loop.backend``)."""
