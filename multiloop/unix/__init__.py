"""Unix-specific loop features: pipes, signals, subprocesses."""

from __future__ import annotations

import asyncio


class UnixMixin(asyncio.AbstractEventLoop):
    """Placeholder until the unix modules land; AbstractEventLoop raises NotImplementedError."""
