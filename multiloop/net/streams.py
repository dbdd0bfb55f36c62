"""Placeholder: create_connection, create_server, create_unix_*, connect_accepted_socket, Server."""

from __future__ import annotations

import asyncio


class StreamsMixin(asyncio.AbstractEventLoop):
    pass
