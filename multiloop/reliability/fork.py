"""Fork: a child forked from a process with a loop gets a clear ``LoopForkedError`` when it touches that loop,
can make a loop of its own, and cannot disturb the parent, which goes on serving.

Facts that shape it:
- After ``fork()`` the child has copies of every fd, and an epoll/kqueue fd refers to the *same* kernel
  object as the parent's: a child that registers, unregisters or waits on it changes or steals the parent's
  events (stock asyncio's and uvloop's children do). multiloop marks every loop unusable in the child
  (``os.register_at_fork``); closing it there only drops the child's copies.
- A fork often happens inside a running callback (a web worker that forks per request): the child's copy of
  the loop is "running" and must still refuse to run, register, or be run again, and must be closable.
- The child runs a new loop in a new thread: the parent's loop is still the running loop of the child's
  main thread, and in a child forked inside a running trio loop only a new thread can run trio again.
- ``fork()`` in a multi-threaded process can deadlock and Python warns about it, so the scenario runs in a
  worker process of its own (``ISOLATED``).
- The last child is forked by an executor worker while the loop's thread may still be inside ``submit()``,
  which holds the executor's lock (on 3.14t: in 12 of 40 runs), so that child can inherit the lock held.
  Its ``close()`` must not need it: the loop drops the parent's executor at fork (this child once hung
  there: docs/reliability.md).

Promises checked, in a child forked inside a callback and in one forked while the loop was idle: running,
registering and serving on the inherited loop raise LoopForkedError whose message names the backend and says
what to do; closing it works; a new loop in the child runs. The parent's server echoes before, during and
after the children, and its loop still holds its registrations. Figures: children, checks passed in them.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from typing import Any

import multiloop

from .harness import Context, Skip

ISOLATED = True

SIZES = {
    "ci": {"children": 2, "timeout": 60},
    "soak": {"children": 50, "timeout": 900},
}


def _in_child(loop: asyncio.AbstractEventLoop, backend: str) -> dict[str, Any]:
    """What a child finds on the loop it inherited (runs in the child only)."""
    found: dict[str, Any] = {}

    def attempt(name: str, call: Any) -> None:
        try:
            call()
            found[name] = "no error"
        except multiloop.LoopForkedError as exc:
            message = str(exc)
            found[name] = "ok" if backend in message and "new" in message else f"unclear: {message}"
        except BaseException as exc:
            found[name] = f"{type(exc).__name__}: {exc}"

    a, b = socket.socketpair()
    attempt("add_reader", lambda: loop.add_reader(a, lambda: None))
    coros = [asyncio.sleep(0), asyncio.sleep(0)]
    attempt("run_until_complete", lambda: loop.run_until_complete(coros[0]))
    attempt("call_soon_threadsafe", lambda: loop.call_soon_threadsafe(lambda: None))
    attempt("create_task", lambda: loop.create_task(coros[1]))
    for coro in coros:
        coro.close()  # refused, never run
    a.close()
    b.close()
    try:
        loop.close()
        found["close"] = "ok"
    except BaseException as exc:
        found["close"] = f"{type(exc).__name__}: {exc}"

    def fresh() -> None:
        try:
            found["new_loop"] = "ok" if multiloop.run(asyncio.sleep(0, "ran"), backend=backend) == "ran" \
                else "wrong result"
        except BaseException as exc:
            found["new_loop"] = f"{type(exc).__name__}: {exc}"
    t = threading.Thread(target=fresh)
    t.start()
    t.join(30)
    return found


def _fork(loop: asyncio.AbstractEventLoop, backend: str) -> tuple[int, int]:
    """Fork; the child reports what it found on the pipe and exits. Returns (pid, read end)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, json.dumps(_in_child(loop, backend)).encode())
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _collect(pid: int, r: int) -> dict[str, Any]:
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    data = b"".join(chunks)
    return json.loads(data) if data else {"child": "reported nothing"}


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _echo(loop: asyncio.AbstractEventLoop, sock: socket.socket, payload: bytes) -> bool:
    await loop.sock_sendall(sock, payload)
    got = b""
    while len(got) < len(payload):
        chunk = await loop.sock_recv(sock, 100)
        if not chunk:
            break
        got += chunk
    return got == payload


async def main(ctx: Context) -> None:
    if not hasattr(os, "fork"):
        raise Skip("no fork() here")
    loop, p = ctx.loop, ctx.params
    server = await loop.create_server(_Echo, "127.0.0.1", 0)
    client = socket.socket()
    client.setblocking(False)
    children = 0
    try:
        await loop.sock_connect(client, server.sockets[0].getsockname()[:2])
        ctx.check(await _echo(loop, client, b"before"), "echo failed before forking")
        fds_before = len(loop._fdtable)  # type: ignore[attr-defined]
        for i in range(p["children"]):
            # Forked inside a running callback (this coroutine's step), the common case.
            pid, r = _fork(loop, ctx.backend)
            ctx.check(await _echo(loop, client, b"while a child runs %d" % i),
                      "the parent stopped echoing while its forked child ran")
            found = await loop.run_in_executor(None, _collect, pid, r)
            children += 1
            for name, outcome in found.items():
                if ctx.check(outcome == "ok", f"forked child, {name}: {outcome}"):
                    ctx.add("child_checks_passed", 1)
            ctx.check(await _echo(loop, client, b"after child %d" % i),
                      "the parent stopped echoing after its forked child closed the loop")
            ctx.check(len(loop._fdtable) == fds_before,  # type: ignore[attr-defined]
                      "the parent's loop lost registrations when its child closed its copy")
        # Forked while the loop is not running: a worker thread forks (the loop is this thread's).
        pid, r = await loop.run_in_executor(None, _fork, loop, ctx.backend)
        found = await loop.run_in_executor(None, _collect, pid, r)
        children += 1
        for name, outcome in found.items():
            if ctx.check(outcome == "ok", f"child forked from another thread, {name}: {outcome}"):
                ctx.add("child_checks_passed", 1)
        ctx.check(await _echo(loop, client, b"at the end"), "the parent stopped echoing after the children")
    finally:
        client.close()
        server.close()
        await server.wait_closed()
    ctx.figure("children", children)
