"""Placeholder."""

from __future__ import annotations

import asyncio


class SignalsMixin(asyncio.AbstractEventLoop):
    pass
