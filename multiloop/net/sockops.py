"""Placeholder: sock_* methods."""

from __future__ import annotations

import asyncio


class SockOpsMixin(asyncio.AbstractEventLoop):
    pass
