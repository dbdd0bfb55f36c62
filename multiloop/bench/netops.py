"""Benchmarks of the loop's socket operations without transports: ``sock_*`` coroutines and name resolution.

Same rules as :mod:`multiloop.bench.micro`: public asyncio API only, the hot section timed, the result checked.
"""

from __future__ import annotations

import asyncio
import socket

from .harness import Sample, Stopwatch, verify


async def sock_pingpong(n: int) -> Sample:
    """``n`` round trips of 64 bytes over a loopback TCP connection, both ends served by tasks using
    ``loop.sock_sendall`` / ``loop.sock_recv`` (the low-level coroutine API, no transport). Verified: every
    message came back unchanged."""
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(listener.getsockname())
    b, _ = listener.accept()
    listener.close()
    for s in (a, b):
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    size = 64
    bad = 0

    async def recv_exactly(sock: socket.socket) -> bytes:
        data = b""
        while len(data) < size:
            chunk = await loop.sock_recv(sock, size - len(data))
            if not chunk:
                raise ConnectionError("peer closed")
            data += chunk
        return data

    async def echo() -> None:
        for _ in range(n):
            await loop.sock_sendall(b, await recv_exactly(b))

    try:
        with Stopwatch() as sw:
            server = asyncio.ensure_future(echo())
            for i in range(n):
                msg = i.to_bytes(8, "little") * (size // 8)
                await loop.sock_sendall(a, msg)
                if await recv_exactly(a) != msg:
                    bad += 1
            await server
    finally:
        a.close()
        b.close()
    verify(bad == 0, f"{bad} messages came back changed")
    return sw.sample(n)


_TYPES = (0, socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW)


async def getaddrinfo_numeric(n: int) -> Sample:
    """``n`` ``loop.getaddrinfo`` calls for numeric IPv4 and IPv6 hosts, cycling through every socket type
    (0, stream, datagram, raw): no name to look up, so the cost is the loop's own path to the answer (stock
    asyncio sends each one through the thread pool). Verified, after the timed loop: every answer equals
    ``socket.getaddrinfo``'s."""
    loop = asyncio.get_running_loop()
    # A raw socket has no port (a service name or number is an error for it).
    queries = [(host, None if t == socket.SOCK_RAW else 8080, t) for host in ("127.0.0.1", "::1") for t in _TYPES]
    expected = {q: sorted(socket.getaddrinfo(q[0], q[1], type=q[2])) for q in queries}
    order = [queries[i % len(queries)] for i in range(n)]
    answers: list[list] = []
    keep = answers.append
    getaddrinfo = loop.getaddrinfo
    with Stopwatch() as sw:
        for host, port, t in order:
            keep(await getaddrinfo(host, port, type=t))
    # Checked after the clock stops (sorting and comparing cost more than a fast loop's answer), every answer.
    wrong = sum(sorted(answer) != expected[q] for q, answer in zip(order, answers, strict=False))
    verify(len(answers) == n and wrong == 0, f"{wrong} answers differ from socket.getaddrinfo's")
    return sw.sample(n)


BENCHMARKS = [
    ("sock_pingpong", sock_pingpong, 1_000, "round trips", "io", "cpu"),
    ("getaddrinfo_numeric", getaddrinfo_numeric, 1_000, "lookups", "core", "wall"),
]
