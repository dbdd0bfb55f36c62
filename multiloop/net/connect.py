"""Finding and connecting sockets for create_connection / create_server: address resolution, happy eyeballs
(RFC 8305), local binding, and the error reports stock asyncio gives.

Facts:
- ``getaddrinfo`` returns addresses in the order the system prefers (RFC 6724), usually all IPv6 first. If
  IPv6 is broken, trying them one by one waits for every IPv6 timeout before the first IPv4 attempt; happy
  eyeballs interleaves the families (``interleave``) and starts the next attempt ``happy_eyeballs_delay``
  seconds after the previous one, or at once when the previous one fails, keeping the first that connects.
- Attempts that lose the race are cancelled; one may have connected in the same pass as the winner, so its
  socket is closed here rather than leaked.
- A numeric host is resolved without a thread by the loop's ``getaddrinfo``; an IPv6 address given as a
  4-tuple keeps its flowinfo and scope_id (getaddrinfo would drop them).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from ..dns import resolve_numeric

AddrInfo = tuple[Any, ...]


async def resolve(loop: asyncio.AbstractEventLoop, address: Any, *, family: int = 0, type: int = socket.SOCK_STREAM, proto: int = 0,
                  flags: int = 0) -> list[AddrInfo]:
    """``getaddrinfo`` for a (host, port[, flowinfo, scope_id]) address, extras kept on IPv6 results."""
    host, port = address[:2]
    # Numeric addresses are answered here, without even a coroutine hop through loop.getaddrinfo (stock
    # asyncio short-circuits them too, so code that replaces loop.getaddrinfo sees only real names).
    infos = resolve_numeric(host, port, family, type, proto, flags)
    if infos is None:
        infos = await loop.getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)
    extra = tuple(address[2:])
    if extra:
        fixed = []
        for af, typ, pro, canon, sa in infos:
            if af == getattr(socket, "AF_INET6", None):
                sa = (sa[0], sa[1], *extra)
            fixed.append((af, typ, pro, canon, sa))
        infos = fixed
    return infos


def interleave(infos: list[AddrInfo], first_family_count: int = 1) -> list[AddrInfo]:
    """Reorder addresses: ``first_family_count`` of the first family, then alternate between families."""
    groups: dict[int, list[AddrInfo]] = {}
    for info in infos:
        groups.setdefault(info[0], []).append(info)
    queues = list(groups.values())
    ordered: list[AddrInfo] = []
    if first_family_count > 1 and queues:
        ordered.extend(queues[0][:first_family_count - 1])
        del queues[0][:first_family_count - 1]
    longest = max((len(q) for q in queues), default=0)
    for i in range(longest):
        for q in queues:
            if i < len(q):
                ordered.append(q[i])
    return ordered


async def connect_one(loop: asyncio.AbstractEventLoop, errors: list[OSError], info: AddrInfo,
                      local_infos: list[AddrInfo] | None) -> socket.socket:
    """Create, bind (to a local address of the same family) and connect one socket; OSErrors go to ``errors``."""
    family, type_, proto, _, address = info
    sock = None
    try:
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setblocking(False)
        if local_infos is not None:
            bind_errors: list[OSError] = []
            for lfamily, _, _, _, laddr in local_infos:
                if lfamily != family:
                    continue
                try:
                    sock.bind(laddr)
                    break
                except OSError as exc:
                    bind_errors.append(OSError(
                        exc.errno, f"error while attempting to bind on address {laddr!r}: {str(exc).lower()}"))
            else:
                if bind_errors:
                    errors.extend(bind_errors[:-1])
                    raise bind_errors[-1]
                raise OSError(f"no matching local address with family={family!r} found")
        await loop.sock_connect(sock, address)
        return sock
    except OSError as exc:
        errors.append(exc)
        if sock is not None:
            sock.close()
        raise
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    finally:
        # The error's traceback holds this frame: without this, exc -> frame -> errors -> exc is a cycle that
        # keeps every failed attempt's exception alive until the cyclic GC runs (CPython checks it).
        errors = None  # type: ignore[assignment]


async def race(loop: asyncio.AbstractEventLoop,
               attempts: Iterable[Callable[[], Coroutine[Any, Any, socket.socket]]],
               delay: float) -> socket.socket | None:
    """Happy eyeballs: start attempts ``delay`` apart (the next at once when one fails); first success wins.

    Losers are cancelled and awaited, and a socket a loser managed to connect anyway is closed.
    """
    pending: set[asyncio.Task[socket.socket]] = set()
    it = iter(attempts)
    more = True
    winner: socket.socket | None = None
    try:
        while winner is None:
            if more:
                start = next(it, None)
                if start is None:
                    more = False
                else:
                    pending.add(loop.create_task(start()))
            if not pending:
                return None
            done, _ = await asyncio.wait(pending, timeout=delay if more else None,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                pending.discard(task)
                if winner is None and not task.cancelled() and task.exception() is None:
                    winner = task.result()
                elif not task.cancelled() and task.exception() is None:
                    task.result().close()
        return winner
    finally:
        for task in pending:
            task.cancel()
        if pending:
            # Let the losers run their cleanup (closing their sockets) before we return.
            done, _ = await asyncio.wait(pending)
            for task in done:
                if not task.cancelled() and task.exception() is None:
                    task.result().close()


def connection_error(errors: list[OSError], all_errors: bool) -> BaseException:
    """The exception create_connection raises when every address failed (stock asyncio's choice of message)."""
    if not errors:
        # Every attempt ended without an OSError (cancelled, say): stock asyncio (gh-135836) raises this
        # rather than failing on the empty list.
        return TimeoutError("create_connection failed")
    if all_errors:
        return ExceptionGroup("create_connection failed", errors)
    if len(errors) == 1:
        return errors[0]
    model = str(errors[0])
    if all(str(exc) == model for exc in errors):
        return errors[0]
    return OSError("Multiple exceptions: {}".format(", ".join(str(exc) for exc in errors)))
