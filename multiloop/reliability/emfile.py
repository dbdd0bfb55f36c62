"""Descriptor floods: a server out of file descriptors pauses accepting, reports it, keeps serving the
connections it has, never spins, and serves again once descriptors are free.

Facts that shape it:
- ``RLIMIT_NOFILE`` is per process, so the scenario lowers it in a worker process of its own (``ISOLATED``)
  and the flooding client is another process (its sockets must not use the server's descriptors).
- Two ways descriptors come free: other code closes its files (the *hogs* phase: the server's own process
  holds every descriptor left), or the flood ends and the server's own connections close (the *flood*
  phase). The first is found by the timed retry (``ACCEPT_RETRY_DELAY``), the second at once (see
  :mod:`multiloop.net.server`): the flood phase sets the delay far longer than the scenario so that only
  the early retry can resume accepting.

Promises checked: one exception-handler report per pause (at most one per retry delay), no spin while
paused, a connection made before the exhaustion keeps echoing, the queued connection is served by the first
retry after the hogs are closed (no further report), and after a flood the next client is served without
waiting for the timed retry. Figures: time from "descriptors free" to "first connection served", reports,
accept pauses, passes per second while paused.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
import subprocess
import sys
import time

from ..net import server as server_mod
from .harness import Context, Skip, open_fds

ISOLATED = True

SIZES = {
    # retry_delay: the hogs phase's ACCEPT_RETRY_DELAY (the default, stock asyncio's, is 1 s);
    # headroom: descriptors allowed above those open when the limit is lowered; flood: flooding connections.
    "ci": {"retry_delay": 0.2, "pause_cycles": 3, "headroom": 40, "flood": 150, "timeout": 60},
    "soak": {"retry_delay": 1.0, "pause_cycles": 3, "headroom": 300, "flood": 2000, "timeout": 120},
}

_OUT_OF_RESOURCES = "socket.accept() out of system resource"

# The flooding client: opens N connections on "flood", closes them all on "free", then connects a probe and
# reports how long the probe took to be served after the flood's descriptors were closed.
_CLIENT = r"""
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
addr = (sys.argv[1], int(sys.argv[2]))
socks = []
for line in sys.stdin:
    if line.startswith("flood"):
        for _ in range(int(line.split()[1])):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(addr)
            except BlockingIOError:
                pass
            socks.append(s)
        print("flooded", flush=True)
    elif line.startswith("free"):
        for s in socks:
            s.close()
        t0 = time.monotonic()
        probe = socket.create_connection(addr, timeout=30)
        probe.sendall(b"probe")
        data = b""
        while len(data) < 5:
            chunk = probe.recv(5)
            if not chunk:
                break
            data += chunk
        print("served", data.decode(errors="replace"), time.monotonic() - t0, flush=True)
        probe.close()
        break
"""


class _Echo(asyncio.Protocol):
    made: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        _Echo.made.append(time.monotonic())

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def _echo_once(loop: asyncio.AbstractEventLoop, sock: socket.socket, payload: bytes) -> bytes:
    await loop.sock_sendall(sock, payload)
    got = b""
    while len(got) < len(payload):
        chunk = await loop.sock_recv(sock, len(payload) - len(got))
        if not chunk:
            break
        got += chunk
    return got


async def _wait(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def _passes(loop: asyncio.AbstractEventLoop) -> int:
    return loop.stats().iterations  # type: ignore[attr-defined]


async def main(ctx: Context) -> None:
    if not hasattr(resource, "RLIMIT_NOFILE"):
        raise Skip("no RLIMIT_NOFILE here")
    loop, p = ctx.loop, ctx.params
    ctx.expect_reports(lambda r: r.get("message") == _OUT_OF_RESOURCES)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    _Echo.made = []
    server = await loop.create_server(_Echo, "127.0.0.1", 0, backlog=p["flood"] + 50)
    host, port = server.sockets[0].getsockname()[:2]
    client = await asyncio.create_subprocess_exec(sys.executable, "-c", _CLIENT, host, str(port),
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    keeper = socket.socket()
    keeper.setblocking(False)
    hogs: list[socket.socket] = []
    try:
        await loop.sock_connect(keeper, (host, port))
        ctx.check(await _echo_once(loop, keeper, b"before") == b"before", "echo failed before the flood")
        await _hogs_phase(ctx, server, (host, port), keeper, hogs, soft, hard)
        await _flood_phase(ctx, client, keeper, soft, hard)
    finally:
        for h in hogs:
            h.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        keeper.close()
        if client.returncode is None:
            client.kill()
        await client.wait()
        server.close()
        await server.wait_closed()


async def _hogs_phase(ctx: Context, server: asyncio.AbstractServer, addr: tuple[str, int],
                      keeper: socket.socket, hogs: list[socket.socket], soft: int, hard: int) -> None:
    loop, p = ctx.loop, ctx.params
    delay = p["retry_delay"]
    server_mod.ACCEPT_RETRY_DELAY = delay
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(open_fds()) + p["headroom"], hard))
    while True:  # every descriptor left goes to a hog
        try:
            hogs.append(socket.socket())
        except OSError as exc:
            if exc.errno != errno.EMFILE:
                raise
            break
    hogs.pop().close()  # one for a client; the server's accept() then finds none
    made_before = len(_Echo.made)
    queued = socket.socket()
    queued.setblocking(False)
    try:
        try:
            queued.connect(addr)
        except BlockingIOError:
            pass
        ctx.check(await _wait(lambda: ctx.reports, 30), "no out-of-resources report while out of descriptors")
        # Paused: stay so for a few retry delays (each retry fails and is reported once).
        passes0, t0 = _passes(loop), time.monotonic()
        await asyncio.sleep(delay * p["pause_cycles"])
        ctx.check(await _echo_once(loop, keeper, b"during") == b"during",
                  "a connection made before the exhaustion stopped echoing while accepting was paused")
        elapsed = time.monotonic() - t0
        rate = (_passes(loop) - passes0) / elapsed
        reports = len(ctx.reports)
        ctx.figure("hogs_reports_while_paused", reports)
        ctx.figure("hogs_passes_per_s_while_paused", round(rate, 1))
        ctx.check(reports <= (elapsed + delay) / delay + 1,
                  f"{reports} reports in {elapsed:.2f} s: more than one per retry delay ({delay} s)")
        ctx.check(rate < 50 + 2 / delay, f"loop spins while accepting is paused: {rate:.0f} passes/s")
        ctx.check(len(_Echo.made) == made_before, "a connection was accepted while out of descriptors")
        # Descriptors come free: the next retry must accept the queued client, with no further report.
        for h in hogs:
            h.close()
        hogs.clear()
        freed = time.monotonic()
        served = await _wait(lambda: len(_Echo.made) > made_before, 30)
        ctx.check(served, "the queued connection was not accepted after descriptors came free")
        if served:
            ctx.figure("hogs_served_after_free_s", round(_Echo.made[made_before] - freed, 3))
        late = len(ctx.reports) - reports
        ctx.check(late == 0, f"{late} more out-of-resources reports after descriptors came free: "
                             "the first retry after freeing did not resume accepting")
    finally:
        queued.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    ctx.figure("hogs_retry_delay_s", delay)


async def _flood_phase(ctx: Context, client: asyncio.subprocess.Process, keeper: socket.socket,
                       soft: int, hard: int) -> None:
    loop, p = ctx.loop, ctx.params
    assert client.stdin is not None and client.stdout is not None
    server_mod.ACCEPT_RETRY_DELAY = 3600.0  # only a retry triggered by freed descriptors can resume in time
    ctx.reports.clear()
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(open_fds()) + p["headroom"], hard))
    try:
        made0 = len(_Echo.made)
        client.stdin.write(f"flood {p['flood']}\n".encode())
        await client.stdin.drain()
        await client.stdout.readline()
        ctx.check(await _wait(lambda: ctx.reports, 30), "no out-of-resources report during the flood")
        ctx.figure("flood_connections", p["flood"])
        passes0, t0 = _passes(loop), time.monotonic()
        await asyncio.sleep(0.5)
        ctx.check(await _echo_once(loop, keeper, b"flood") == b"flood",
                  "a connection made before the flood stopped echoing during it")
        rate = (_passes(loop) - passes0) / (time.monotonic() - t0)
        ctx.figure("flood_passes_per_s_while_paused", round(rate, 1))
        ctx.check(rate < 50, f"loop spins while accepting is paused by the flood: {rate:.0f} passes/s")
        ctx.figure("flood_accepted_before_pause", len(_Echo.made) - made0)
        client.stdin.write(b"free\n")
        await client.stdin.drain()
        line = (await asyncio.wait_for(client.stdout.readline(), 60)).decode().split()
        served = len(line) == 3 and line[:2] == ["served", "probe"]
        ctx.check(served, f"the client after the flood was not served: {line!r}")
        if served:
            ctx.figure("flood_served_after_free_s", round(float(line[2]), 3))
        ctx.figure("flood_reports", len(ctx.reports))
        ctx.check(len(ctx.reports) == 1, f"{len(ctx.reports)} out-of-resources reports for one pause")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
