"""Placeholder: TLS (start_tls, ssl= wrapping) and loop.sendfile."""

from __future__ import annotations

import asyncio


class TlsMixin(asyncio.AbstractEventLoop):
    pass
