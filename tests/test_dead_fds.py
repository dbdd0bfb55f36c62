"""Dead fds never spin: an fd closed behind the loop's back is dropped and reported once, a stale epoll
registration left by a dup()ed fd is got rid of, and the loop keeps serving everything else, on every backend.

"Does not spin" is counted, never timed: while the loop waits 0.2 s for a timer with nothing to do, a loop
that blocks makes a few passes, a spinning one tens of thousands.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket

import pytest

# Backends whose kernel (or host loop) tells the loop that a registered fd is closed: poll(2) says POLLNVAL,
# select() fails with EBADF, trio's re-arm fails with EBADF. epoll and kqueue forget a closed file silently
# (nothing to spin on, nothing to report).
KERNEL_REPORTS_CLOSED = {"poll", "select", "trio"}
IDLE_PASSES = 20


def passes_while_idle(loop, run, seconds: float = 0.2) -> int:
    before = loop.stats().iterations
    run(asyncio.sleep(seconds))
    return loop.stats().iterations - before


def reports_about(errors: list[dict], fd: int) -> list[dict]:
    return [ctx for ctx in errors if ctx.get("fd") == fd]


@pytest.fixture
def errors(loop):
    seen: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    return seen


def assert_still_serving(loop, run, pair):
    """``pair`` was made before the fd under test was closed, so it cannot reuse that fd's number (a new
    file on a silently forgotten number is another matter: the core still has the old registration)."""
    c, d = pair

    async def main():
        got = loop.create_future()
        loop.add_reader(c, lambda: got.done() or got.set_result(c.recv(10)))
        d.send(b"alive")
        try:
            return await got
        finally:
            loop.remove_reader(c)

    assert run(main()) == b"alive"


def test_reader_that_closes_its_own_fd_is_dropped_and_reported_once(loop, run, errors, socketpair, backend):
    other = socketpair()
    a, b = socket.socketpair()
    a.setblocking(False)
    fd = a.fileno()
    runs = []

    def careless_reader():
        runs.append(a.recv(100))
        a.close()  # forgot remove_reader()

    async def main():
        loop.add_reader(fd, careless_reader)
        b.send(b"x")
        while not runs:
            await asyncio.sleep(0.01)

    try:
        run(main())
        assert passes_while_idle(loop, run) <= IDLE_PASSES
    finally:
        b.close()
    assert runs == [b"x"]
    reports = reports_about(errors, fd)
    assert len(reports) == (1 if backend in KERNEL_REPORTS_CLOSED else 0)
    assert loop.stats().dead_fds == len(reports)
    if reports:
        ctx = reports[0]
        assert ctx["backend"] == backend and ctx["reader"] is careless_reader
        assert f"{backend}: fd {fd} was closed while still registered" in ctx["message"]
        assert "careless_reader" in ctx["message"]
        assert ctx["exception"].fd == fd and ctx["exception"].backend == backend
        assert fd not in loop._fds  # dropped: a new file with this number starts clean
    assert errors == reports
    assert_still_serving(loop, run, other)
    loop.remove_reader(fd)  # harmless afterwards, whatever the backend did


def test_writer_of_a_closed_fd_is_dropped_and_reported_once(loop, run, errors, socketpair, backend):
    other = socketpair()
    a, b = socket.socketpair()
    fd = a.fileno()
    runs = []

    def careless_writer():
        runs.append(1)
        a.close()

    async def main():
        loop.add_writer(fd, careless_writer)
        while not runs:
            await asyncio.sleep(0.01)

    try:
        run(main())
        assert passes_while_idle(loop, run) <= IDLE_PASSES
    finally:
        b.close()
    assert runs == [1]
    reports = reports_about(errors, fd)
    assert len(reports) == (1 if backend in KERNEL_REPORTS_CLOSED else 0)
    if reports:
        assert reports[0]["writer"] is careless_writer and "writer" in reports[0]["message"]
    assert_still_serving(loop, run, other)
    loop.remove_writer(fd)


def test_dup_closed_and_removed_leaves_no_busy_loop(loop, run, errors, socketpair, backend):
    """The issue's epoll case: the registration of (fd, file) outlives close() because a dup keeps the file
    open, and EPOLL_CTL_DEL can no longer reach it."""
    other = socketpair()
    a, b = socket.socketpair()
    a.setblocking(False)
    fd = a.fileno()
    keep = os.dup(fd)
    try:
        loop.add_reader(fd, lambda: None)
        run(asyncio.sleep(0))
        a.close()
        loop.remove_reader(fd)
        b.send(b"readable through the dup")
        assert passes_while_idle(loop, run) <= IDLE_PASSES
        stats = loop.stats()
        if backend == "epoll":
            # the kernel did report the stale registration, and the backend rebuilt its epoll set
            assert stats.stale_fd_events >= 1
            assert stats.backend_stats["rebuilds"] >= 1
        assert_still_serving(loop, run, other)
    finally:
        os.close(keep)
        b.close()
    assert errors == []


def test_dup_closed_while_still_registered_is_dropped_and_reported_once(loop, run, errors, socketpair, backend):
    """Closed behind the loop's back while a dup keeps the file readable: no backend's kernel forgets this
    registration, so every backend must notice (epoll: the core's sampling of reported fds)."""
    other = socketpair()
    a, b = socket.socketpair()
    a.setblocking(False)
    fd = a.fileno()
    keep = os.dup(fd)
    runs = []

    def reader():
        runs.append(1)
        try:
            os.read(fd, 100)
        except OSError:
            pass  # EBADF: nothing this callback does can clear the dup's readiness

    try:
        loop.add_reader(fd, reader)
        run(asyncio.sleep(0))
        a.close()
        b.send(b"readable through the dup")
        run(asyncio.sleep(0.2))  # any burst before the loop notices happens here
        assert passes_while_idle(loop, run) <= IDLE_PASSES
        assert len(runs) <= 300  # the core samples reported fds every 256th pass (epoll cannot tell)
        assert_still_serving(loop, run, other)
    finally:
        os.close(keep)
        b.close()
    reports = reports_about(errors, fd)
    assert len(reports) == 1 and reports[0]["reader"] is reader
    assert errors == reports


def test_a_new_file_reusing_a_stale_number_gets_only_its_own_events(loop, run, errors, backend):
    a, b = socket.socketpair()
    a.setblocking(False)
    fd = a.fileno()
    keep = os.dup(fd)
    c = d = None
    try:
        loop.add_reader(fd, lambda: None)
        run(asyncio.sleep(0))
        a.close()
        loop.remove_reader(fd)
        c, d = socket.socketpair()
        c.setblocking(False)
        if c.fileno() != fd:
            os.dup2(c.fileno(), fd)  # make the number collide, as it usually does by itself
            c.close()
            c = socket.socket(fileno=fd)
        runs = []

        def new_reader():
            runs.append(1)

        loop.add_reader(fd, new_reader)
        b.send(b"the OLD file is readable")
        assert passes_while_idle(loop, run) <= IDLE_PASSES
        # The new socket has no data: nothing of the old file may reach its reader. trio's one-shot epoll
        # registrations let a stale one through once (trio documents it), then never again.
        assert len(runs) <= (1 if backend == "trio" else 0)
        runs.clear()
        d.send(b"new")

        async def wait():
            while not runs:
                await asyncio.sleep(0.01)

        run(wait())
        loop.remove_reader(fd)
        if backend == "epoll":
            assert loop.stats().backend_stats["rebuilds"] >= 1
    finally:
        os.close(keep)
        b.close()
        for s in (c, d):
            if s is not None:
                s.close()
    assert errors == []


def test_invalid_and_error_are_poll2s_bits_and_distinct():
    import multiloop

    assert multiloop.INVALID == select.POLLNVAL
    assert multiloop.ERROR == select.POLLERR | select.POLLHUP
    assert not multiloop.ERROR & multiloop.INVALID
    assert (multiloop.READ, multiloop.WRITE) == (select.POLLIN, select.POLLOUT)


def test_fds_closed_between_runs_are_dropped_before_their_numbers_can_be_reused(loop, run, errors, backend):
    # Closed while the loop was not running, with their writers registered. A backend that opens files when a
    # run starts (trio: each run_until_complete is a trio.run, with its own epoll fd and wake-up sockets)
    # must not let those files take the numbers and be watched by the stale registrations: a writable
    # wake-up socket under a stale writer runs it on every pass, with nothing reported.
    run(asyncio.sleep(0))
    pairs = [socket.socketpair() for _ in range(4)]
    fds = [s.fileno() for pair in pairs for s in pair]
    for fd in fds:
        loop.add_writer(fd, lambda: None)
    for a, b in pairs:
        a.close()
        b.close()
    assert passes_while_idle(loop, run) <= IDLE_PASSES
    assert all(len(reports_about(errors, fd)) == (1 if backend in KERNEL_REPORTS_CLOSED else 0) for fd in fds)
    for fd in fds:
        loop.remove_writer(fd)


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll only")
def test_epoll_unregister_after_a_rebuild_took_the_closed_number():
    """A rebuild makes a new epoll set; the kernel may give it the number of the very fd that was found closed.
    Unregistering that fd afterwards (the core drops what was reported INVALID) meets EINVAL, not EBADF: the
    number names the set itself. It must count as gone, not fail."""
    from multiloop.backend import INVALID, READ
    from multiloop.pollers.epoll import EpollPoller

    poller = EpollPoller()
    a, b = socket.socketpair()
    try:
        fd = a.fileno()
        poller.register(fd, READ)
        os.close(a.detach())  # closed behind the poller's back: its number is the lowest free one now
        poller.discard_stale([])  # a rebuild: the fresh set takes the lowest free number
        if poller.fileno() != fd:
            pytest.skip("the kernel gave the new epoll set another number")
        assert (fd, INVALID) in poller.poll(0)
        poller.unregister(fd)  # must not raise
        assert poller.statistics()["registered"] == 0
    finally:
        b.close()
        poller.close()
