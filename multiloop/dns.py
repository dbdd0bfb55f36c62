"""Name resolution for the loop.

Facts:
- Stock asyncio sends every ``getaddrinfo`` to the thread pool, even for ``127.0.0.1``. A numeric host with a
  numeric port needs no lookup: the C library parses the strings (``inet_pton``) and reads no file, so we call
  it inline with AI_NUMERICHOST|AI_NUMERICSERV, for every socket type (uvloop only does SOCK_STREAM). If the
  inline call says "not numeric" we fall back to the executor, so results are always exactly what
  ``socket.getaddrinfo`` would return.
- For one numeric address the answer is a pure function of the six arguments: one address, so the RFC 6724
  sort (``/etc/gai.conf``, routing) has nothing to reorder (glibc keeps the original order of equal
  addresses), and the socket types and protocols come from a table compiled into the C library. Exceptions,
  which depend on the system's state: AI_ADDRCONFIG (the configured interfaces), AI_CANONNAME (the canonical
  name may come from a resolver), an IPv6 scope given as an interface name (``fe80::1%eth0``:
  ``if_nametoindex``), and no host at all (two addresses, so the system's sort order applies).
- Even inline, the C call costs 4-7 us, 5-10 times a loop pass.

So: answers for the pure case are kept in a small bounded cache keyed by all six arguments (each checked to be
of the types ``socket.getaddrinfo`` treats as they compare: a float port equal to an int must still be refused
as it is by ``socket.getaddrinfo``), and every call gets a fresh list of the (immutable) tuples. Errors are never
cached. The cache is shared by all loops of the process; dict operations are atomic (per-object locks on
free-threaded builds) and a full cache is simply emptied, so no lock is needed.
"""

from __future__ import annotations

import socket
from typing import Any

#: How many distinct numeric queries are remembered. A program that makes more only loses the cache's speed.
CACHE_SIZE = 256

# Flags whose answers depend on the system's state (see the module docstring): never cached.
_UNCACHEABLE_FLAGS = getattr(socket, "AI_ADDRCONFIG", 0) | socket.AI_CANONNAME
_NUMERIC_FLAGS = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV

_cache: dict[tuple[Any, ...], tuple[Any, ...]] = {}


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
    # Only exact str hosts, int/str/None ports and int-like numbers use the cache: values of other types may
    # compare equal to a cached key (8080.0 == 8080) yet be refused by socket.getaddrinfo.
    cacheable = (host.__class__ is str and (port is None or port.__class__ is int or port.__class__ is str)
                 and isinstance(family, int) and isinstance(type, int) and isinstance(proto, int)
                 and isinstance(flags, int))
    if cacheable:
        key = (host, port, family, type, proto, flags)
        cached = _cache.get(key)
        if cached is not None:
            return list(cached)
    if not (_numeric_port(port) and _maybe_numeric_host(host)):
        return None
    try:
        answer = socket.getaddrinfo(host, port, family, type, proto, flags | _NUMERIC_FLAGS)
    except (socket.gaierror, UnicodeError, OverflowError, TypeError):
        # Not numeric, or bad input (a float ``flags`` fails at the ``|`` already): the executor's call to
        # socket.getaddrinfo with the caller's own arguments answers or raises exactly as it would.
        return None
    if cacheable and not flags & _UNCACHEABLE_FLAGS and "%" not in host:
        if len(_cache) >= CACHE_SIZE:
            _cache.clear()
        _cache[key] = tuple(answer)
    return answer

