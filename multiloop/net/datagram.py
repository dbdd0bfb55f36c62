"""Placeholder: create_datagram_endpoint."""

from __future__ import annotations

import asyncio


class DatagramMixin(asyncio.AbstractEventLoop):
    pass
