"""Placeholder."""

from __future__ import annotations

import asyncio


class PipesMixin(asyncio.AbstractEventLoop):
    pass
