"""Placeholder."""

from __future__ import annotations

import asyncio


class SubprocessMixin(asyncio.AbstractEventLoop):
    pass
