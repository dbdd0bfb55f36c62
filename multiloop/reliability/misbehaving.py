"""Misbehaving user code: callbacks, timers, fd callbacks, protocol methods and signal handlers that raise or
block. The loop reports each failure once, in asyncio's words, and goes on serving.

Facts that shape it (stock asyncio's contract, which code relies on):
- An exception from a callback (``call_soon``, a timer, a reader) goes to the loop's exception handler with
  the handle; the loop carries on with the next callback. ``SystemExit`` and ``KeyboardInterrupt`` are not
  "errors in a callback": they propagate out of ``run_forever``/``run_until_complete``, and the loop can be
  run again afterwards.
- A protocol method that raises: ``connection_made`` is reported and the connection goes on;
  ``data_received``/``eof_received``/``buffer_updated`` are fatal for that connection (reported, transport
  closed); ``pause_writing``/``resume_writing`` are reported. Other connections are not affected.
- A signal handler is a callback like any other: one that raises is reported and still runs for the next
  signal.
- An exception handler that raises is itself reported through the default handler; the loop goes on.
- A callback that blocks stalls the whole loop (it is single-threaded); what matters is that timers and I/O
  that came due meanwhile run right after, and nothing is lost.

Promises checked: every planted failure is reported exactly once with its exception, nothing else is
reported, the server still echoes after each, a signal handler that raised runs again, a loop interrupted
by SystemExit runs again, and after a blocking callback a due timer and a pending read are handled in the
next pass or two. Figures: reports by kind, the stall.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter
from typing import Any

import multiloop

from .harness import Context

SIZES = {
    "ci": {"rounds": 3, "block": 0.2, "timeout": 90},
    "soak": {"rounds": 100, "block": 0.5, "timeout": 900},
}


class Boom(Exception):
    """Raised on purpose by misbehaving callbacks (reports of it are expected)."""


def _boom(*_: Any) -> None:
    raise Boom("planted")


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _Faulty(_Echo):
    """Raises in ``where`` (one protocol method), otherwise echoes."""

    where = ""

    def __init__(self) -> None:
        self.fault = _Faulty.where

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.fault == "pause_writing":
            transport.set_write_buffer_limits(high=0)  # any write that is buffered pauses
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        if self.fault == "connection_made":
            raise Boom("planted in connection_made")

    def data_received(self, data: bytes) -> None:
        if self.fault == "data_received":
            raise Boom("planted in data_received")
        if self.fault == "pause_writing":
            data = data * 4096  # more than the kernel takes: buffered, so pause_writing() is called
        super().data_received(data)

    def eof_received(self) -> None:
        if self.fault == "eof_received":
            raise Boom("planted in eof_received")

    def pause_writing(self) -> None:
        if self.fault == "pause_writing":
            raise Boom("planted in pause_writing")


def _is_planted(report: dict[str, Any]) -> bool:
    exc = report.get("exception")
    return isinstance(exc, Boom) or (report.get("message") == "Unhandled error in exception handler")


async def _exchange(loop: asyncio.AbstractEventLoop, addr: Any, payload: bytes, *, eof: bool = False,
                    read_all: bool = False) -> bytes:
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, addr)
        await loop.sock_sendall(sock, payload)
        if eof:
            sock.shutdown(socket.SHUT_WR)
        got = b""
        while len(got) < len(payload) or read_all:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                break
            got += chunk
            if read_all and len(got) >= len(payload) * 4096:
                break
        return got
    finally:
        sock.close()


async def _wait_reports(ctx: Context, n: int) -> None:
    for _ in range(500):
        if len(ctx.reports) >= n:
            return
        await asyncio.sleep(0.01)


async def _callbacks(ctx: Context, kinds: Counter[str]) -> None:
    loop = ctx.loop
    ran: list[str] = []
    loop.call_soon(_boom)
    loop.call_soon(ran.append, "after call_soon")
    loop.call_later(0.001, _boom)
    loop.call_later(0.002, ran.append, "after timer")
    a, b = socket.socketpair()
    try:
        def reader() -> None:
            loop.remove_reader(a)
            raise Boom("planted in a reader")
        loop.add_reader(a, reader)
        b.send(b"x")
        await _wait_reports(ctx, 3)
        await asyncio.sleep(0.01)
    finally:
        loop.remove_reader(a)
        a.close()
        b.close()
    ctx.check(ran == ["after call_soon", "after timer"], f"callbacks after a failing one did not run: {ran}")
    kinds["callback"] += 1
    kinds["timer"] += 1
    kinds["reader"] += 1


async def _protocols(ctx: Context, addr: Any, kinds: Counter[str]) -> None:
    loop = ctx.loop
    for where in ("connection_made", "data_received", "eof_received", "pause_writing"):
        _Faulty.where = where
        before = len(ctx.reports)
        if where == "connection_made":
            got = await _exchange(loop, addr, b"still echoes")
            ctx.check(got == b"still echoes", "a connection whose connection_made() raised stopped working")
        elif where == "pause_writing":
            await _exchange(loop, addr, b"y" * 64, read_all=True)
        else:
            await _exchange(loop, addr, b"z", eof=where == "eof_received")
        await _wait_reports(ctx, before + 1)
        ctx.check(len(ctx.reports) == before + 1,
                  f"{len(ctx.reports) - before} reports for one failure in {where}()")
        kinds[where] += 1
        _Faulty.where = ""
        ctx.check(await _exchange(loop, addr, b"healthy") == b"healthy",
                  f"the server stopped serving after a protocol's {where}() raised")


async def _signals(ctx: Context, kinds: Counter[str]) -> None:
    loop = ctx.loop
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGUSR1"):
        return
    calls = []

    def handler() -> None:
        calls.append(1)
        raise Boom("planted in a signal handler")

    before = len(ctx.reports)
    loop.add_signal_handler(signal.SIGUSR1, handler)
    try:
        for n in (1, 2):
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(500):
                if len(calls) >= n:
                    break
                await asyncio.sleep(0.01)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    ctx.check(len(calls) == 2, f"a signal handler that raised ran {len(calls)} times for 2 signals")
    ctx.check(len(ctx.reports) - before == 2, "a raising signal handler was not reported once per signal")
    kinds["signal_handler"] += 2


async def _raising_exception_handler(ctx: Context, kinds: Counter[str]) -> None:
    loop = ctx.loop
    record = loop.get_exception_handler()
    handled = []

    def bad_handler(lp: Any, context: dict[str, Any]) -> None:
        handled.append(context)
        raise Boom("planted in the exception handler")

    asyncio_logger = logging.getLogger("asyncio")
    logged: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record)

    capture = Capture()
    asyncio_logger.addHandler(capture)
    propagate, asyncio_logger.propagate = asyncio_logger.propagate, False
    loop.set_exception_handler(bad_handler)
    try:
        loop.call_soon(_boom)
        ran = loop.create_future()
        loop.call_soon(ran.set_result, None)
        await ran
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(record)
        asyncio_logger.removeHandler(capture)
        asyncio_logger.propagate = propagate
    ctx.check(len(handled) == 1, f"the exception handler was called {len(handled)} times for one error")
    ctx.check(any("Unhandled error in exception handler" in r.getMessage() for r in logged),
              "an exception handler that raised was not logged by the default handler")
    kinds["exception_handler"] += 1


async def _blocking(ctx: Context) -> None:
    loop, block = ctx.loop, ctx.params["block"]
    a, b = socket.socketpair()
    a.setblocking(False)
    stats = loop.stats  # type: ignore[attr-defined]
    try:
        timer_ran = loop.create_future()
        read = loop.create_future()
        def note(fut: asyncio.Future[int]) -> None:
            if not fut.done():
                fut.set_result(stats().iterations)
        loop.call_later(block / 4, note, timer_ran)
        loop.add_reader(a, note, read)

        def blocker() -> None:
            b.send(b"during the block")
            time.sleep(block)
        loop.call_soon(blocker)
        start_pass = stats().iterations
        start = time.monotonic()
        await asyncio.wait_for(asyncio.gather(timer_ran, read), 30)
        ctx.figure("blocking_callback_stall_ms", round((time.monotonic() - start) * 1e3, 1))
        # Passes after the blocker's: the due timer and the ready fd run in the next pass or two.
        lag = max(timer_ran.result(), read.result()) - start_pass
        ctx.figure("passes_to_catch_up_after_block", lag)
        ctx.check(lag <= 3, f"after a blocking callback it took {lag} passes to run a due timer and a read")
    finally:
        loop.remove_reader(a)
        a.close()
        b.close()


def _system_exit_in_a_callback(backend: str, ctx: Context) -> None:
    """In a thread, on a loop of its own: SystemExit leaves run_forever, and the loop runs again."""
    loop = multiloop.new_loop(backend)
    try:
        def stop() -> None:
            raise SystemExit(3)
        loop.call_soon(stop)
        try:
            loop.run_forever()
            ctx.check(False, "SystemExit raised in a callback did not leave run_forever()")
        except SystemExit as exc:
            ctx.check(exc.code == 3, f"run_forever() raised SystemExit({exc.code!r}), not the callback's")
        ctx.check(loop.run_until_complete(asyncio.sleep(0, "again")) == "again",
                  "the loop did not run again after SystemExit left it")
    finally:
        loop.close()


async def main(ctx: Context) -> None:
    loop, p = ctx.loop, ctx.params
    ctx.expect_reports(_is_planted)
    kinds: Counter[str] = Counter()
    server = await loop.create_server(_Faulty, "127.0.0.1", 0)
    addr = server.sockets[0].getsockname()[:2]
    try:
        for _ in range(p["rounds"]):
            await _callbacks(ctx, kinds)
            await _protocols(ctx, addr, kinds)
            await _signals(ctx, kinds)
            await _raising_exception_handler(ctx, kinds)
        await _blocking(ctx)
        await loop.run_in_executor(None, _system_exit_in_a_callback, ctx.backend, ctx)
        kinds["system_exit"] += 1
    finally:
        server.close()
        await server.wait_closed()
    planted = sum(1 for r in ctx.reports if _is_planted(r))
    ctx.figure("planted_failures", dict(sorted(kinds.items())))
    ctx.figure("reports", planted)
    ctx.check(planted == sum(v for k, v in kinds.items() if k not in ("exception_handler", "system_exit")),
              f"{planted} reports for {sum(kinds.values())} planted failures")
