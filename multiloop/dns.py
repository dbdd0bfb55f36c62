"""Name resolution for the loop.

Stock asyncio sends every ``getaddrinfo`` to the thread pool, even for ``127.0.0.1``. A numeric host (or no
host) with a numeric port needs no lookup: the C library answers from the string alone, without I/O, so we
call it inline with AI_NUMERICHOST|AI_NUMERICSERV, for every socket type (uvloop only does SOCK_STREAM).
If the inline call says "not numeric" we fall back to the executor, so results are always exactly what
``socket.getaddrinfo`` would return.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any


def _numeric_port(port: Any) -> bool:
    if port is None or isinstance(port, int):
        return True
    if isinstance(port, (str, bytes)):
        return port.isdigit()
    return False


def _maybe_numeric_host(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        try:
            host = host.decode("idna")
        except UnicodeError:
            return False
    if not isinstance(host, str) or not host:
        return False
    # Cheap pre-filter: IPv4 literals are digits and dots, IPv6 literals contain ':'.
    return ":" in host or host.replace(".", "").isdigit()


def resolve_numeric(host: Any, port: Any, family: int, type: int, proto: int, flags: int) -> list[Any] | None:
    """The answer for a numeric host/port without any I/O, or None when a real lookup is needed."""
    if not (_numeric_port(port) and _maybe_numeric_host(host)):
        return None
    try:
        return socket.getaddrinfo(host, port, family, type, proto,
                                  flags | socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
    except (socket.gaierror, UnicodeError, OverflowError):
        return None


async def getaddrinfo(loop: asyncio.AbstractEventLoop, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0,
                      flags: int = 0) -> list[Any]:
    result = resolve_numeric(host, port, family, type, proto, flags)
    if result is not None:
        return result
    return await loop.run_in_executor(None, socket.getaddrinfo, host, port, family, type, proto, flags)
