"""Checks of what asyncio code sees: a multiloop loop on the backend, used through the public API.

Facts that shape these checks:

- The loop's guarantees that depend on the backend are few and concrete: a reader runs when its fd is
  readable, a writer when it is writable (including *again* after a full send buffer drains: that is what
  every transport with buffered data waits for), removing one side keeps the other, a timer wakes a loop
  blocked in the backend, ``call_soon_threadsafe`` and signals wake it too, a regular file is always ready,
  a hang-up reaches the reader, and nothing ever makes the loop spin -- not an idle wait, not an fd closed
  behind the loop's back, not a stale kernel registration left by a ``dup()``ed fd.
- A closed fd is reported differently by each kernel: poll(2) says POLLNVAL, select() fails with EBADF,
  trio raises in the waiting task, epoll and kqueue silently forget a file that is really gone (and epoll
  keeps reporting one kept alive by a ``dup()``). The checks therefore require what holds everywhere: at
  most one report through the exception handler (naming the fd and the backend), no busy loop, the callback
  never called again, every other fd still served.
- Real protocols (TCP streams moving a megabyte, a subprocess's pipes) exercise flow control and hang-ups
  through the transports, which is where a subtly wrong backend shows up as a stall rather than an error.

Some of these were tests in ``tests/test_core_fds.py``; the test suite now runs these checks on every
backend (``tests/test_kit_checks.py``) instead of keeping copies.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from .harness import MAX_IDLE_PASSES, Harness, SkipCheck, check

T = TypeVar("T")


def settle(fut: asyncio.Future[T], produce: Callable[[], T]) -> Callable[[], None]:
    """A callback that resolves ``fut`` with ``produce()`` the first time it runs."""

    def callback() -> None:
        if not fut.done():
            fut.set_result(produce())

    return callback


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except (BlockingIOError, InterruptedError):
        pass


@check("loop", quick=True)
def reader_runs_when_data_arrives(t: Harness) -> None:
    """add_reader(): the callback runs when the fd becomes readable; remove_reader() says it was there."""
    loop = t.new_loop()
    a, b = t.socketpair()

    async def main() -> bytes:
        got = loop.create_future()
        loop.add_reader(a, settle(got, lambda: a.recv(100)))
        b.send(b"ping")
        data = await got
        t.expect(loop.remove_reader(a) is True, "remove_reader() of a registered reader did not return True")
        return data

    data = t.run(loop, main(), what="a reader waiting for data sent to its socket")
    t.expect(data == b"ping", f"the reader read {data!r}, expected b'ping'")


@check("loop", quick=True)
def writer_runs_when_writable(t: Harness) -> None:
    """add_writer(): the callback runs while the fd is writable."""
    loop = t.new_loop()
    a, _ = t.socketpair()

    async def main() -> None:
        ok = loop.create_future()
        loop.add_writer(a.fileno(), settle(ok, lambda: True))
        await ok
        t.expect(loop.remove_writer(a.fileno()) is True, "remove_writer() of a registered writer did not "
                                                          "return True")

    t.run(loop, main(), what="a writer on a socket with an empty send buffer (WRITE readiness never delivered?)")


@check("loop", quick=True)
def writer_runs_again_once_a_full_buffer_drains(t: Harness) -> None:
    """A writer registered while the send buffer is full runs once the peer reads (transports rely on it)."""
    loop = t.new_loop()
    a, b = t.socketpair()
    chunk = b"x" * 65536
    try:
        while True:
            a.send(chunk)
    except BlockingIOError:
        pass

    async def main() -> None:
        ok = loop.create_future()
        loop.add_writer(a, settle(ok, lambda: True))
        await asyncio.sleep(0.05)
        loop.call_soon(_drain, b)
        await ok
        loop.remove_writer(a)

    t.run(loop, main(), what="a writer waiting for a full send buffer to drain (WRITE readiness lost?)")


@check("loop")
def removing_the_reader_keeps_the_writer(t: Harness) -> None:
    """remove_reader() on an fd with both callbacks leaves the writer registered and running."""
    loop = t.new_loop()
    a, _ = t.socketpair()

    async def main() -> None:
        loop.add_reader(a, lambda: None)
        wrote = loop.create_future()
        loop.add_writer(a, settle(wrote, lambda: True))
        t.expect(loop.remove_reader(a) is True, "remove_reader() did not return True")
        await wrote
        t.expect(loop.remove_writer(a) is True, "remove_writer() did not return True")

    t.run(loop, main(), what="the writer of an fd whose reader was removed")


@check("loop")
def removing_the_writer_keeps_the_reader(t: Harness) -> None:
    """remove_writer() on an fd with both callbacks leaves the reader registered and running."""
    loop = t.new_loop()
    a, b = t.socketpair()

    async def main() -> bytes:
        got = loop.create_future()
        loop.add_writer(a, lambda: None)
        loop.add_reader(a, settle(got, lambda: a.recv(10)))
        t.expect(loop.remove_writer(a) is True, "remove_writer() did not return True")
        b.send(b"still")
        data = await got
        t.expect(loop.remove_reader(a) is True, "remove_reader() did not return True")
        return data

    data = t.run(loop, main(), what="the reader of an fd whose writer was removed")
    t.expect(data == b"still", f"the reader read {data!r}")


@check("loop", quick=True)
def regular_file_is_always_readable(t: Harness) -> None:
    """A regular file can be read through add_reader() and connect_read_pipe() (python app.py < data)."""
    loop = t.new_loop()
    payload = b"0123456789" * 50_000
    fd = t.regular_file(payload)

    async def main() -> bytes:
        got = loop.create_future()
        loop.add_reader(fd, settle(got, lambda: os.pread(fd, 10, 0)))
        first = await got
        t.expect(loop.remove_reader(fd), "remove_reader() of a regular file's reader did not return True")
        t.expect(loop.stats().always_ready_fds == 0, "the removed reader's fd is still dispatched as always ready")
        t.expect(first == payload[:10], f"the reader read {first!r}")
        reader = asyncio.StreamReader()
        pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            return await reader.read()
        finally:
            transport.close()

    try:
        data = t.run(loop, main(), what="reading a regular file through the loop")
    except OSError as exc:
        t.fail(f"reading a regular file through the loop raised {type(exc).__name__}: {exc}. A backend whose "
               f"kernel cannot watch regular files must raise UnpollableFdError (multiloop.translate_oserror() "
               f"turns EPERM into it) so that the core treats them as always ready")
    t.expect(data == payload, f"connect_read_pipe() on a regular file read {len(data)} of {len(payload)} bytes")


@check("loop", quick=True)
def idle_loop_sleeps_until_its_timer(t: Harness) -> None:
    """A loop with nothing ready blocks in the backend until its next timer (no busy loop)."""
    loop = t.new_loop()
    a, _ = t.socketpair()
    loop.add_reader(a, lambda: None)  # one idle fd, as in any real program
    t.defer(lambda: loop.remove_reader(a))
    t.expect_no_spin(loop, "with one idle reader and nothing ready")


@check("loop", quick=True)
def timer_wakes_a_loop_blocked_in_the_backend(t: Harness) -> None:
    """A timer due in 50 ms fires while the loop is blocked waiting for an idle fd."""
    loop = t.new_loop()
    a, _ = t.socketpair()
    loop.add_reader(a, lambda: None)
    t.defer(lambda: loop.remove_reader(a))
    t.run(loop, asyncio.sleep(0.05), timeout=5.0,
          what="asyncio.sleep(0.05) with an idle fd registered (poll() blocking past its timeout?)")


@check("loop", quick=True)
def call_soon_threadsafe_wakes_a_blocked_loop(t: Harness) -> None:
    """call_soon_threadsafe() from another thread wakes a loop blocked in the backend."""
    loop = t.new_loop()

    async def main() -> int:
        loop.call_later(3600, lambda: None)  # without a wake-up the backend would block for an hour
        fut = loop.create_future()
        started = threading.Event()

        def other_thread() -> None:
            started.wait()
            loop.call_soon_threadsafe(fut.set_result, threading.get_ident())

        thread = threading.Thread(target=other_thread)
        thread.start()
        loop.call_soon(started.set)
        try:
            return await fut
        finally:
            thread.join()

    ident = t.run(loop, main(), what="call_soon_threadsafe() waking a blocked loop (make_waker()?)")
    t.expect(ident != threading.get_ident(), "the callback did not come from the other thread")


@check("loop")
def signal_handler_wakes_a_blocked_loop(t: Harness) -> None:
    """A signal handler added with add_signal_handler() runs while the loop is blocked in the backend."""
    if threading.current_thread() is not threading.main_thread():
        raise SkipCheck("signal handlers need the main thread")
    loop = t.new_loop()

    async def main() -> None:
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, settle(got, lambda: True))
        try:
            killer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1))
            killer.start()
            try:
                await got
            finally:
                killer.cancel()
                killer.join()
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    t.run(loop, main(), what="a SIGUSR1 handler while the loop waits")


@check("loop", quick=True)
def peer_hangup_wakes_the_reader(t: Harness) -> None:
    """When the peer closes, the reader runs and reads EOF."""
    loop = t.new_loop()
    a, b = t.socketpair()

    async def main() -> bytes:
        got = loop.create_future()
        loop.add_reader(a, settle(got, lambda: a.recv(10)))
        b.close()
        data = await got
        loop.remove_reader(a)
        return data

    data = t.run(loop, main(), what="a reader whose peer closed (hang-up never reported?)")
    t.expect(data == b"", f"the reader read {data!r} instead of EOF")


@check("loop")
def only_ready_fds_run_their_callbacks(t: Harness) -> None:
    """With 100 readers registered and data for 10 of them, exactly those 10 run."""
    loop = t.new_loop()
    pairs = [t.socketpair() for _ in range(100)]
    chosen = set(range(3, 100, 10))
    runs = [0] * len(pairs)

    def make(i: int, sock: socket.socket, done: asyncio.Future[None]) -> None:
        def on_readable() -> None:
            runs[i] += 1
            _drain(sock)
            if all(runs[j] for j in chosen) and not done.done():
                done.set_result(None)

        loop.add_reader(sock, on_readable)

    async def main() -> None:
        done = loop.create_future()
        for i, (a, _) in enumerate(pairs):
            make(i, a, done)
        for i in chosen:
            pairs[i][1].send(b"x")
        try:
            await done
            for _ in range(5):
                await asyncio.sleep(0)
        finally:
            for a, _ in pairs:
                loop.remove_reader(a)

    t.run(loop, main(), what="10 readers of 100 with data")
    wrong = [i for i, n in enumerate(runs) if n and i not in chosen]
    t.expect(not wrong, f"readers of fds with no data ran ({len(wrong)} of 90): the backend reports fds that are "
                        f"not ready (a wrong fd in its results?)")


@check("loop", quick=True)
def closed_fd_never_spins(t: Harness) -> None:
    """An fd closed behind the loop's back (reader not removed): at most one report, no busy loop, the
    other fds still served."""
    loop = t.new_loop()
    errors = t.capture_errors(loop)
    a, b = socket.socketpair()
    a.setblocking(False)
    t.defer(a.close)
    t.defer(b.close)
    fd = a.fileno()
    c, d = t.socketpair()
    runs = []

    def careless_reader() -> None:
        runs.append(1)
        a.recv(100)
        a.close()  # the bug under test: closes without remove_reader()

    async def main() -> None:
        loop.add_reader(fd, careless_reader)
        b.send(b"x")
        while not runs:
            await asyncio.sleep(0.01)

    t.run(loop, main(), what="a reader waiting for data")
    t.expect_no_spin(loop, f"after fd {fd} was closed with its reader still registered",
                     "; poll() must report a closed fd as INVALID (poll(2)'s POLLNVAL, select()'s EBADF) or "
                     "stop reporting it")
    t.expect(len(runs) == 1, f"the reader of closed fd {fd} ran {len(runs)} times; after the close it must not "
                             f"run again (each run would meet EBADF): poll() must report a closed fd as INVALID "
                             f"(poll(2)'s POLLNVAL, select()'s EBADF) or stop reporting it")
    about = [ctx for ctx in errors if ctx.get("fd") == fd or f"fd {fd}" in str(ctx.get("message", ""))]
    others = [ctx for ctx in errors if ctx not in about]
    t.expect(not others, f"unexpected exception handler calls: {[c.get('message') for c in others]}")
    t.expect(len(about) <= 1, f"closed fd {fd} was reported {len(about)} times through the exception handler; "
                              f"once is enough (was it dropped?)")
    if about:
        message = str(about[0].get("message", ""))
        t.expect(t.backend in message and str(fd) in message,
                 f"the report of closed fd {fd} must name the fd and the backend: {message!r}")
        t.expect(about[0].get("handle") is not None, "the report of a closed fd must carry the callback's handle")

    async def still_served() -> bytes:
        got = loop.create_future()
        loop.add_reader(c, settle(got, lambda: c.recv(10)))
        d.send(b"alive")
        data = await got
        loop.remove_reader(c)
        return data

    t.expect(t.run(loop, still_served(), what="another fd after a closed one") == b"alive", "wrong data")
    try:
        loop.remove_reader(fd)
    except Exception as exc:  # noqa: BLE001
        t.fail(f"remove_reader({fd}) after the fd was closed raised {type(exc).__name__}: {exc}")


@check("loop")
def stale_registration_of_a_dup_never_spins(t: Harness) -> None:
    """A reader whose fd was dup()ed, closed and then removed leaves no busy loop (epoll keeps such
    registrations), and a new file that reuses the number gets only its own events."""
    loop = t.new_loop()
    errors = t.capture_errors(loop)
    a, b = socket.socketpair()
    a.setblocking(False)
    t.defer(b.close)
    fd = a.fileno()
    keep = os.dup(fd)
    t.defer(lambda: os.close(keep))
    runs = []

    async def main() -> None:
        loop.add_reader(fd, lambda: runs.append(1))
        await asyncio.sleep(0)
        a.close()  # the dup keeps the file (and an epoll registration of it) alive
        loop.remove_reader(fd)
        b.send(b"readable through the dup")

    t.run(loop, main(), what="registering and removing a reader")
    t.expect_no_spin(loop, f"after dup()ed fd {fd} was closed and its reader removed while the file stayed "
                           f"readable through the dup",
                     "; a kernel registration outlived unregister() (epoll keys registrations by fd *and* "
                     "file): drop it in discard_stale(), e.g. by rebuilding the kernel object")
    t.expect(not runs, f"the removed reader ran {len(runs)} times")
    # The number is free again; the next socket likely gets it. Its reader must see only its own events.
    c, d = t.socketpair()
    new_runs = []

    def new_reader() -> None:
        new_runs.append(1)
        _drain(c)

    loop.add_reader(c, new_reader)
    t.defer(lambda: loop.remove_reader(c))
    t.expect_no_spin(loop, f"with a new socket (fd {c.fileno()}) registered after the stale one")
    t.expect(len(new_runs) <= 1, f"the reader of a new socket with no data (fd {c.fileno()}, old fd {fd}) ran "
                                 f"{len(new_runs)} times: events of the old file still arrive under its number")
    d.send(b"x")
    new_runs.clear()

    async def wait_new() -> None:
        while not new_runs:
            await asyncio.sleep(0.01)

    t.run(loop, wait_new(), what="the new socket's reader")
    t.expect(not errors, f"unexpected exception handler calls: {[e.get('message') for e in errors]}")


@check("loop")
def closed_dup_still_registered_never_spins(t: Harness) -> None:
    """A reader whose fd was dup()ed and closed *without* remove_reader(): no busy loop, at most one report."""
    loop = t.new_loop()
    errors = t.capture_errors(loop)
    a, b = socket.socketpair()
    a.setblocking(False)
    t.defer(b.close)
    fd = a.fileno()
    keep = os.dup(fd)
    t.defer(lambda: os.close(keep))
    runs = []

    def reader() -> None:
        runs.append(1)
        try:
            os.read(fd, 100)
        except OSError:
            pass  # EBADF once closed: the callback cannot clear the readiness of the dup's file

    async def main() -> None:
        loop.add_reader(fd, reader)
        await asyncio.sleep(0)
        a.close()  # behind the loop's back; the dup keeps the file, and its readiness, alive
        b.send(b"readable through the dup")
        for _ in range(3):
            await asyncio.sleep(0)

    t.run(loop, main(), what="a reader on a dup()ed fd")
    t.expect_no_spin(loop, f"after dup()ed fd {fd} was closed with its reader registered and the file stayed "
                           f"readable through the dup")
    t.expect(len(runs) <= MAX_IDLE_PASSES, f"the reader of closed fd {fd} ran {len(runs)} times")
    t.expect(len(errors) <= 1, f"{len(errors)} exception handler calls; at most one report is expected")
    loop.remove_reader(fd)


@check("loop")
def fd_number_reused_after_close_without_removal(t: Harness) -> None:
    """After an fd is closed without removal and then removed, a new file with the same number works."""
    loop = t.new_loop()

    async def main() -> bytes:
        a, b = socket.socketpair()
        a.setblocking(False)
        loop.add_reader(a.fileno(), lambda: None)
        fd = a.fileno()
        a.close()
        b.close()
        loop.remove_reader(fd)  # must not raise although the fd is gone
        c, d = t.socketpair()
        got = loop.create_future()
        loop.add_reader(c, settle(got, lambda: c.recv(10)))
        d.send(b"new")
        data = await got
        loop.remove_reader(c)
        return data

    t.expect(t.run(loop, main(), what="a reader on a reused fd number") == b"new", "wrong data")


@check("loop", quick=True)
def tcp_streams_echo_a_megabyte(t: Harness) -> None:
    """asyncio streams over TCP on 127.0.0.1 echo 1 MiB intact (transports, flow control, half-close)."""
    loop = t.new_loop()
    payload = os.urandom(1 << 20)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> bytes:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)

            async def send() -> None:
                for i in range(0, len(payload), 100_000):
                    writer.write(payload[i:i + 100_000])
                    await writer.drain()
                writer.write_eof()

            sender = asyncio.ensure_future(send())
            echoed = await reader.read(-1)
            await sender
            writer.close()
            await writer.wait_closed()
            return echoed
        finally:
            server.close()
            await server.wait_closed()

    echoed = t.run(loop, main(), timeout=30.0, what="a 1 MiB TCP echo through asyncio streams")
    t.expect(hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest(),
             f"the echo returned {len(echoed)} bytes that differ from the {len(payload)} sent")


@check("loop")
def subprocess_pipes_carry_data_both_ways(t: Harness) -> None:
    """create_subprocess_exec() with pipes: 256 KiB through a child's stdin and back from its stdout."""
    loop = t.new_loop()
    payload = os.urandom(1 << 18)

    async def main() -> tuple[bytes, int]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate(payload)
        return out, proc.returncode or 0

    out, code = t.run(loop, main(), timeout=60.0, what="a subprocess echoing 256 KiB through pipes")
    t.expect(code == 0 and out == payload, f"the child exited {code} and returned {len(out)} of "
                                           f"{len(payload)} bytes")


@check("loop")
def stats_include_the_backend_counters(t: Harness) -> None:
    """loop.stats().backend_stats shows the poller's statistics() (a read-only mapping of ints)."""
    loop = t.new_loop()
    stats = loop.stats()
    counters = stats.backend_stats
    bad = {k: v for k, v in counters.items() if not isinstance(k, str) or not isinstance(v, int)}
    t.expect(not bad, f"backend_stats must map names to ints; these are not: {bad!r}")
    t.expect(stats.backend == t.backend, f"stats().backend is {stats.backend!r}")
