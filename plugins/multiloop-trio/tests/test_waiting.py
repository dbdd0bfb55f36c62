"""How the trio backend waits: every fd through one inner epoll/kqueue poller and one trio task (multiplexed),
or one trio task per fd and direction (the fallback), and how it chooses."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import multiloop_trio
import pytest
import trio
from multiloop_trio import _mux

import multiloop


def wait_tasks_while_watching(loop, n):
    """Register readers on ``n`` idle sockets and return the poller's counters seen during the run."""
    pairs = [socket.socketpair() for _ in range(n)]
    try:
        async def main():
            for a, _ in pairs:
                loop.add_reader(a, lambda: None)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            stats = loop.stats().backend_stats
            for a, _ in pairs:
                loop.remove_reader(a)
            return stats

        return loop.run_until_complete(main())
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_multiplexed_uses_one_trio_task_for_every_fd(loop, waiting):
    stats = wait_tasks_while_watching(loop, 50)
    if waiting == "multiplexed":
        # The drive path: trio is the loop's guest and the loop blocks in the inner poller itself.
        assert stats["multiplexed"] == 1
        assert stats["guest_runs"] == 1
        assert stats["watch_tasks"] == 0
    else:
        assert stats["multiplexed"] == 0
        assert stats["watch_tasks"] == 50


def test_the_inner_poller_is_the_best_automatic_backend_that_can_be_waited_on(waiting):
    if waiting != "multiplexed":
        pytest.skip("about the multiplexed watcher")
    inner = _mux.inner_backend("auto")
    assert inner is not None and inner.name == multiloop.default_backend()  # epoll here, kqueue on BSD/macOS
    assert multiloop_trio.TrioPoller(inner="auto").waiting_with == f"multiplexed ({inner.name})"


def test_inner_none_forces_the_per_fd_watches():
    assert multiloop_trio.TrioPoller(inner="none").waiting_with == "per-fd watches"
    assert multiloop_trio.TrioPoller(inner="none").statistics()["multiplexed"] == 0


@pytest.mark.parametrize(("name", "error", "why"), [
    ("poll", multiloop.BackendUnavailableError, "its poller has no fileno() to wait on"),
    ("trio", multiloop.BackendUnavailableError, "cannot name the trio backend itself"),
    ("no_such_backend", multiloop.UnknownBackendError, "unknown multiloop backend 'no_such_backend'"),
])
def test_an_inner_poller_that_cannot_serve_is_a_clear_error(monkeypatch, name, error, why):
    monkeypatch.setenv("MULTILOOP_TRIO_INNER", name)
    with pytest.raises(error, match="MULTILOOP_TRIO_INNER" if name != "trio" else "trio") as info:
        multiloop.new_loop("trio")
    assert why in str(info.value)


def test_a_run_whose_inner_poller_cannot_be_created_waits_per_fd(loop, waiting, monkeypatch, caplog):
    if waiting != "multiplexed":
        pytest.skip("about the multiplexed watcher")

    def no_descriptors_left(self):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(_mux.MuxWatcher, "open", no_descriptors_left)
    with caplog.at_level(logging.WARNING, logger="multiloop.trio"):
        stats = wait_tasks_while_watching(loop, 3)
    assert stats["watch_tasks"] == 3 and stats["mux_failures"] == 1 and stats["guest_runs"] == 0
    assert "cannot create the inner epoll poller" in caplog.text and "Too many open files" in caplog.text
    monkeypatch.undo()
    stats = wait_tasks_while_watching(loop, 3)  # the next run tries again: a guest run on the inner poller
    assert stats["guest_runs"] == 1 and stats["watch_tasks"] == 0 and stats["mux_failures"] == 1


def test_a_rebuilt_inner_epoll_set_is_waited_on_from_then_on(loop, waiting):
    """A stale registration (a dup()ed fd closed behind the loop's back) makes the inner epoll poller replace
    its epoll set, closing the fd the trio task waits on; the task moves to the new one."""
    if waiting != "multiplexed" or multiloop.default_backend() != "epoll":
        pytest.skip("about the multiplexed watcher on epoll")
    a, b = socket.socketpair()
    keep = os.dup(a.fileno())
    c, d = socket.socketpair()
    c.setblocking(False)
    try:
        async def provoke():
            loop.add_reader(a.fileno(), lambda: None)
            await asyncio.sleep(0)
            fd = a.fileno()
            a.close()
            loop.remove_reader(fd)  # the delete fails: the registration lives on through the dup
            b.send(b"readable through the dup")
            for _ in range(10):  # the stale report reaches discard_stale, which rebuilds
                await asyncio.sleep(0)

        async def still_served():
            got = loop.create_future()
            loop.add_reader(c, lambda: got.done() or got.set_result(c.recv(10)))
            d.send(b"after")
            try:
                return await asyncio.wait_for(got, 10)
            finally:
                loop.remove_reader(c)

        loop.run_until_complete(provoke())
        assert loop.run_until_complete(still_served()) == b"after"
        stats = loop.stats().backend_stats
        assert stats["inner_rebuilds"] >= 1 and stats["inner_replaced"] >= 1
    finally:
        os.close(keep)
        for s in (b, c, d):
            s.close()


def test_a_callback_that_closes_its_fd_is_reported_invalid_once(loop, waiting):
    a, b = socket.socketpair()
    a.setblocking(False)
    fd = a.fileno()
    errors = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))

    def careless():
        a.recv(10)
        a.close()  # no remove_reader

    async def main():
        loop.add_reader(fd, careless)
        b.send(b"x")
        for _ in range(20):
            await asyncio.sleep(0)

    try:
        loop.run_until_complete(main())
    finally:
        b.close()
    assert [ctx["fd"] for ctx in errors] == [fd]
    assert loop.stats().backend_stats["invalid_fds"] == 1


def test_an_fd_the_kernel_cannot_watch_is_always_ready(loop):
    """/dev/null: epoll refuses it (EPERM) where fstat cannot tell it from a tty; select says "ready"."""
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        async def main():
            calls = []
            loop.add_reader(fd, calls.append, 1)
            while len(calls) < 3:
                await asyncio.sleep(0)
            loop.remove_reader(fd)
            return len(calls)

        assert loop.run_until_complete(asyncio.wait_for(main(), 10)) >= 3
    finally:
        os.close(fd)


def test_trio_code_and_the_loop_may_wait_on_the_same_fd(waiting):
    """Multiplexed, trio never sees the loop's fds: a trio task may wait on one too (per fd, trio allows a
    single waiter per fd and direction, and the loop's callback is then called on every pass)."""
    if waiting != "multiplexed":
        pytest.skip("about the multiplexed watcher")
    a, b = socket.socketpair()
    a.setblocking(False)

    async def main():
        async with multiloop_trio.open_loop() as loop:
            seen = loop.create_future()
            loop.add_reader(a, lambda: seen.done() or seen.set_result(True))
            b.send(b"x")
            await trio.lowlevel.wait_readable(a)
            await multiloop_trio.aio_as_trio(asyncio.wait_for)(seen, 10)
            loop.remove_reader(a)

    try:
        trio.run(main)
    finally:
        a.close()
        b.close()


def test_trio_tasks_run_while_the_loop_is_busy_with_ready_fds():
    """Each pass checkpoints, even while the inner poller keeps reporting events (and the passes poll it
    without going back to trio's wait): trio code keeps running during an asyncio fd ping-pong."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    rounds = 300

    async def ping_pong():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        count = 0

        def on_a():
            nonlocal count
            a.recv(16)
            count += 1
            if count == rounds:
                done.set_result(count)
            else:
                a.send(b"x")

        def on_b():
            b.recv(16)
            b.send(b"y")

        loop.add_reader(a, on_a)
        loop.add_reader(b, on_b)
        a.send(b"x")
        try:
            return await done
        finally:
            loop.remove_reader(a)
            loop.remove_reader(b)

    async def main():
        ticks = 0
        result = None

        async def ticker():
            nonlocal ticks
            while result is None:
                ticks += 1
                await trio.sleep(0)

        async with multiloop_trio.open_loop(), trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            result = await multiloop_trio.aio_as_trio(ping_pong)()
        return result, ticks

    try:
        result, ticks = trio.run(main)
    finally:
        a.close()
        b.close()
    assert result == rounds
    assert ticks >= rounds // 2, ticks  # about one tick per loop pass: two passes per round trip
