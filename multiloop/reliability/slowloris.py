"""Slowloris: many clients connect and then sit there -- idle, with half a request sent, or half-closed --
while a normal client makes requests; the idle ones must cost the normal one nothing.

Facts that shape it:
- A readiness loop costs per *ready* fd, not per open fd (epoll, kqueue, trio's epoll), or per registered fd
  and wait (poll, select). Either way an idle connection produces no event and runs no callback: the
  events dispatched for a request must not grow with the number of idle connections.
- A half-closed peer (``shutdown(SHUT_WR)``) is at EOF; a server that keeps it (``eof_received`` returning
  true) must stop watching it for reading, or an fd at EOF is reported readable on every pass (a spin).
- Latency on a shared 2-core machine varies with everything else running, so it is measured and reported
  (before and with the idle clients), and the promise is stated on the mechanism: fd events and loop passes
  per request.

Promises checked: every request is answered correctly with the idle clients connected, fd events and loop
passes per request with them are at most those without them (plus a small slack), and the loop does not
spin while they sit there. Figures: idle connections, p50/p99 request latency without and with them, new
connection latency with them, events and passes per request.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from .harness import Context, latency_figures

#: Capped on an FD_SETSIZE backend (see harness.LIMITED_FDS_CAP).
FD_HUNGRY = ("idle",)

SIZES = {
    "ci": {"idle": 300, "requests": 200, "timeout": 90},
    "soak": {"idle": 5000, "requests": 5000, "timeout": 900},
}


class _LineServer(asyncio.Protocol):
    """Answers each complete line with ``ok <line>``; keeps half-closed peers (as a lenient server would)."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            self.transport.write(b"ok " + line + b"\n")

    def eof_received(self) -> bool:
        return True  # keep the half-closed connection: it stays open, at EOF, not watched


async def _request(loop: asyncio.AbstractEventLoop, sock: socket.socket, i: int) -> bool:
    line = b"request %d" % i
    await loop.sock_sendall(sock, line + b"\n")
    want = b"ok " + line + b"\n"
    got = b""
    while len(got) < len(want):
        chunk = await loop.sock_recv(sock, len(want) - len(got))
        if not chunk:
            break
        got += chunk
    return got == want


async def _measure(ctx: Context, addr: tuple[str, int], n: int) -> tuple[list[float], float, float]:
    """``n`` requests on one connection: latencies, fd events per request, loop passes per request."""
    loop = ctx.loop
    stats = loop.stats  # type: ignore[attr-defined]
    sock = socket.socket()
    sock.setblocking(False)
    latencies = []
    try:
        await loop.sock_connect(sock, addr)
        await _request(loop, sock, -1)  # warm: the server's side of the connection exists
        before = stats()
        for i in range(n):
            start = time.monotonic()
            ok = await _request(loop, sock, i)
            latencies.append(time.monotonic() - start)
            if not ctx.check(ok, f"request {i} got a wrong answer"):
                break
        after = stats()
    finally:
        sock.close()
    return (latencies, (after.fd_events - before.fd_events) / n, (after.iterations - before.iterations) / n)


async def main(ctx: Context) -> None:
    loop, p = ctx.loop, ctx.params
    server = await loop.create_server(_LineServer, "127.0.0.1", 0, backlog=p["idle"])
    addr = server.sockets[0].getsockname()[:2]
    idle: list[socket.socket] = []
    try:
        base, base_events, base_passes = await _measure(ctx, addr, p["requests"])
        kinds = {"idle": 0, "partial": 0, "half_closed": 0}
        for i in range(p["idle"]):
            sock = socket.socket()
            sock.setblocking(False)
            idle.append(sock)
            await loop.sock_connect(sock, addr)
            kind = ("idle", "partial", "half_closed")[i % 3]
            if kind != "idle":
                await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: slow")  # never finished
            if kind == "half_closed":
                sock.shutdown(socket.SHUT_WR)
            kinds[kind] += 1
        await asyncio.sleep(0.2)  # the server has accepted and read them all
        passes0 = loop.stats().iterations  # type: ignore[attr-defined]
        t0 = time.monotonic()
        await asyncio.sleep(0.3)
        idle_rate = (loop.stats().iterations - passes0) / (time.monotonic() - t0)  # type: ignore[attr-defined]
        loaded, events, passes = await _measure(ctx, addr, p["requests"])
        connects = []
        for i in range(min(50, p["requests"])):
            start = time.monotonic()
            sock = socket.socket()
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, addr)
                ctx.check(await _request(loop, sock, i), "a new connection's request got a wrong answer")
            finally:
                sock.close()
            connects.append(time.monotonic() - start)
    finally:
        for sock in idle:
            sock.close()
        server.close()
        # The server's side of a half-closed connection is at EOF, not watched: it cannot see the close.
        server.close_clients()  # type: ignore[attr-defined]
        await server.wait_closed()
    ctx.check(idle_rate < 50, f"the loop spins with {p['idle']} idle connections: {idle_rate:.0f} passes/s")
    ctx.check(events <= base_events * 1.5 + 1,
              f"fd events per request grew from {base_events:.2f} to {events:.2f} with idle connections")
    ctx.check(passes <= base_passes * 1.5 + 1,
              f"loop passes per request grew from {base_passes:.2f} to {passes:.2f} with idle connections")
    ctx.figure("idle_connections", kinds)
    ctx.figure("passes_per_s_with_idle_connections", round(idle_rate, 1))
    ctx.figure("fd_events_per_request", {"without": round(base_events, 2), "with": round(events, 2)})
    ctx.figure("passes_per_request", {"without": round(base_passes, 2), "with": round(passes, 2)})
    ctx.result.figures.update(latency_figures("request_without_idle", base))
    ctx.result.figures.update(latency_figures("request_with_idle", loaded))
    ctx.result.figures.update(latency_figures("new_connection_with_idle", connects))
