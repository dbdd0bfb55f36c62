"""Peers that reset or vanish mid-write: the loop's transports end those connections quietly, exactly once,
and go on serving everyone else.

Facts that shape it:
- A peer that closes with ``SO_LINGER`` (on, 0 s) sends RST at once; one that closes while data it never
  read sits in its receive buffer sends RST too; a process that is killed has its sockets closed by the
  kernel the same way. The writer then meets ECONNRESET or EPIPE on its next ``send``, or its next read
  returns ECONNRESET (or EOF, if the reset raced the FIN).
- For a socket transport every OSError is the connection's normal end (stock asyncio's rule): the protocol
  gets ``connection_lost(exc)`` (``exc`` an OSError or None), nothing goes to the exception handler, and
  the fd is closed.
- The loop is on both sides: a server streaming to peers that go away, and a client streaming to a server
  that resets it. TCP and Unix sockets both.

Promises checked: every connection's protocol gets ``connection_lost`` exactly once, after
``connection_made``, with None or an OSError; no exception-handler report; the server still echoes for a
healthy client afterwards; no fd leaked. Figures: connections of each kind, the errors ``connection_lost``
got.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from typing import Any

from .harness import Context

SIZES = {
    "ci": {"rounds": 40, "killed": 2, "timeout": 90},
    "soak": {"rounds": 2000, "killed": 50, "timeout": 900},
}

_CHUNK = b"x" * 65536

_KILLED_CLIENT = r"""
import socket, sys, time
s = socket.socket(socket.AF_UNIX if sys.argv[1] == "unix" else socket.AF_INET)
s.connect(sys.argv[2] if sys.argv[1] == "unix" else ("127.0.0.1", int(sys.argv[2])))
s.recv(4096)
print("ready", flush=True)
time.sleep(60)
"""


class _Streamer(asyncio.Protocol):
    """Writes until the connection is lost, honouring flow control; records its lifecycle."""

    def __init__(self, ctx: Context, lost: Counter[str]) -> None:
        self.ctx, self.lost = ctx, lost
        self.made = False
        self.lost_calls = 0
        self.paused = False
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.made = True
        self.transport = transport
        self.pump()

    def pump(self) -> None:
        while not self.paused and not self.transport.is_closing():
            self.transport.write(_CHUNK)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.pump()

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost_calls += 1
        self.ctx.check(self.made, "connection_lost() before connection_made()")
        self.ctx.check(self.lost_calls == 1, "connection_lost() called twice")
        self.ctx.check(exc is None or isinstance(exc, OSError),
                       f"connection_lost() got {exc!r}, not None or an OSError")
        self.lost[type(exc).__name__ if exc is not None else "None"] += 1
        if not self.done.done():
            self.done.set_result(None)


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def _peer_goes_away(ctx: Context, family: int, addr: Any, how: str) -> None:
    loop = ctx.loop
    sock = socket.socket(family)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, addr)
        await loop.sock_recv(sock, ctx.rng.randint(1, 65536))  # mid-stream: the server is writing
    finally:
        if how == "reset" and sock.family != socket.AF_UNIX:
            _reset(sock)
        else:
            sock.close()  # unread data pending: the kernel resets (TCP) or the writer gets EPIPE (Unix)


async def _killed_peer(ctx: Context, kind: str, addr: str) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _KILLED_CLIENT, kind, addr,
                                                stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        await proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()


async def _server_resets_us(ctx: Context, lost: Counter[str]) -> None:
    """The loop is the writing client; a raw server reads a little and resets."""
    loop = ctx.loop
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    try:
        connecting = loop.create_task(loop.create_connection(lambda: _Streamer(ctx, lost),
                                                            *listener.getsockname()))
        conn, _ = await loop.sock_accept(listener)
        try:
            await loop.sock_recv(conn, ctx.rng.randint(1, 65536))
        finally:
            _reset(conn)
        _, protocol = await connecting
        await protocol.done
    finally:
        listener.close()


async def _echo_check(ctx: Context, family: int, addr: Any) -> None:
    loop = ctx.loop
    sock = socket.socket(family)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, addr)
        got = await loop.sock_recv(sock, 100)
        ctx.check(got.startswith(b"x"), "the server stopped serving after its peers reset or vanished")
    finally:
        sock.close()


async def main(ctx: Context) -> None:
    loop, p = ctx.loop, ctx.params
    lost: Counter[str] = Counter()
    protocols: list[_Streamer] = []

    def factory() -> _Streamer:
        protocol = _Streamer(ctx, lost)
        protocols.append(protocol)
        return protocol

    tmp = tempfile.mkdtemp(prefix="multiloop-peers-")
    path = os.path.join(tmp, "s.sock")
    tcp = await loop.create_server(factory, "127.0.0.1", 0)
    unix = await loop.create_unix_server(factory, path)
    tcp_addr = tcp.sockets[0].getsockname()[:2]
    kinds: Counter[str] = Counter()
    try:
        for _ in range(p["rounds"]):
            how = ctx.rng.choice(["reset", "vanish", "client_reset"])
            if how == "client_reset":
                await _server_resets_us(ctx, lost)
                kinds["loop_client_reset_tcp"] += 1
                continue
            family, addr = ctx.rng.choice([(socket.AF_INET, tcp_addr), (socket.AF_UNIX, path)])
            await _peer_goes_away(ctx, family, addr, how)
            kinds[f"peer_{how}_{'unix' if family == socket.AF_UNIX else 'tcp'}"] += 1
        for i in range(p["killed"]):
            kind = "unix" if i % 2 else "tcp"
            await _killed_peer(ctx, kind, path if kind == "unix" else str(tcp_addr[1]))
            kinds[f"killed_{kind}"] += 1
        await _echo_check(ctx, socket.AF_INET, tcp_addr)
        await _echo_check(ctx, socket.AF_UNIX, path)
        # Every server-side connection ends (the streamer writes until the peer's reset reaches it).
        await asyncio.wait_for(asyncio.gather(*(pr.done for pr in protocols)), 60)
    finally:
        tcp.close()
        unix.close()
        await tcp.wait_closed()
        await unix.wait_closed()
        shutil.rmtree(tmp, ignore_errors=True)
    ctx.check(all(pr.lost_calls == 1 for pr in protocols), "a server connection never got connection_lost()")
    ctx.figure("connections", sum(kinds.values()))
    ctx.figure("kinds", dict(sorted(kinds.items())))
    ctx.figure("connection_lost_with", dict(sorted(lost.items())))
