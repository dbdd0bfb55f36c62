"""The epoll backend's wait (``multiloop/pollers/epollwait.py``): compiled, ``epoll_wait(2)`` on a stack buffer;
pure Python, ``epoll.poll`` itself. Either way the core must get what ``select.epoll.poll`` gives: the same
``(fd, events)`` pairs, ``None`` and negative timeouts without limit, bad timeouts refused, signal handlers run
during a wait, and every ready fd reported even past one wait's batch (256 events when compiled)."""

from __future__ import annotations

import select
import signal
import socket

import pytest

import multiloop

pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux-only")

if hasattr(select, "epoll"):
    from multiloop.pollers.epollwait import waiter


@pytest.fixture
def ep():
    epoll = select.epoll()
    yield epoll
    epoll.close()


def test_the_compiled_build_waits_through_epoll_wait_and_the_pure_one_through_epoll_poll(ep):
    wait = waiter(ep)
    if multiloop.compiled.ACTIVE:
        assert type(wait.__self__).__name__ == "EpollWait"  # its bound wait: called without an argument tuple
    else:
        assert wait == ep.poll


def test_the_same_events_as_epoll_poll(ep):
    a, b = socket.socketpair()
    with a, b:
        ep.register(a.fileno(), select.EPOLLIN | select.EPOLLOUT)
        ep.register(b.fileno(), select.EPOLLIN)
        wait = waiter(ep)
        assert sorted(wait(0)) == sorted(ep.poll(0)) == [(a.fileno(), select.EPOLLOUT)]
        b.send(b"x")
        assert sorted(wait(0)) == sorted(ep.poll(0)) == [(a.fileno(), select.EPOLLIN | select.EPOLLOUT)]
        a.send(b"y")
        b.shutdown(socket.SHUT_WR)
        expected = sorted(ep.poll(0))
        assert sorted(wait(0)) == expected and {fd for fd, _ in expected} == {a.fileno(), b.fileno()}
        # None, a negative timeout and a whole-number timeout: no limit / seconds, as epoll.poll takes them.
        assert sorted(wait(None)) == sorted(wait(-1)) == sorted(wait(3)) == expected


def test_nothing_ready_within_the_timeout_gives_an_empty_list(ep):
    a, b = socket.socketpair()
    with a, b:
        ep.register(a.fileno(), select.EPOLLIN)
        assert waiter(ep)(0) == []
        assert waiter(ep)(0.0004) == []  # under a millisecond: rounded up, not down to a busy zero


@pytest.mark.parametrize("bad", ["1", b"1", [1], object()])
def test_a_timeout_that_is_no_number_is_a_type_error(ep, bad):
    with pytest.raises(TypeError):
        ep.poll(bad)
    with pytest.raises(TypeError):
        waiter(ep)(bad)


def test_every_ready_fd_is_reported_even_past_one_batch(ep):
    pairs = [socket.socketpair() for _ in range(300)]
    try:
        for a, b in pairs:
            ep.register(a.fileno(), select.EPOLLIN)
            b.send(b"x")
        wanted = {a.fileno() for a, _ in pairs}
        seen: set[int] = set()
        wait = waiter(ep)
        for _ in range(3):  # level-triggered: what one wait leaves out, the next reports
            events = wait(0)
            assert len(events) <= 300 and all(ev == select.EPOLLIN for _, ev in events)
            seen |= {fd for fd, _ in events}
        assert seen == wanted
    finally:
        for a, b in pairs:
            a.close()
            b.close()


class Interrupted(Exception):
    pass


def test_a_signal_handler_that_raises_ends_the_wait_with_its_exception(ep):
    a, b = socket.socketpair()
    with a, b:
        ep.register(a.fileno(), select.EPOLLIN)

        def handler(signum, frame):
            raise Interrupted

        previous = signal.signal(signal.SIGALRM, handler)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            with pytest.raises(Interrupted):
                waiter(ep)(30)  # nothing will be ready: only the signal ends it
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def test_a_signal_handler_that_returns_leaves_a_wait_that_reports_no_stray_events(ep):
    a, b = socket.socketpair()
    with a, b:
        ep.register(a.fileno(), select.EPOLLIN)
        calls = []
        previous = signal.signal(signal.SIGALRM, lambda signum, frame: calls.append(signum))
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.02)
            # compiled: returns [] when interrupted (the core waits again); pure: epoll.poll retries until
            # its timeout. Either way no event is invented and the handler ran.
            assert waiter(ep)(0.3) == []
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert calls == [signal.SIGALRM]


# ---------------------------------------------------------------------- the native wait (multiloop.readiness)
def _ping_pong(loop, rounds):
    """``rounds`` one-byte round trips between two add_reader callbacks; returns how many a's reader saw."""
    import asyncio

    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    seen = []
    done = loop.create_future()

    def on_a():
        seen.append(a.recv(16))
        if len(seen) == rounds:
            done.set_result(None)
        else:
            a.send(b"x")

    def on_b():
        b.send(b.recv(16).upper())

    loop.add_reader(a.fileno(), on_a)
    loop.add_reader(b.fileno(), on_b)
    try:
        a.send(b"x")
        loop.run_until_complete(asyncio.wait_for(done, 10))
    finally:
        loop.remove_reader(a.fileno())
        loop.remove_reader(b.fileno())
        a.close()
        b.close()
    return seen


def test_the_compiled_epoll_loop_gets_its_events_without_poll_except_on_audit_passes():
    # Compiled: the poller's native wait hands events to the core in C; poll() (the list) runs only on the
    # passes that audit the reported fds (one in 256) and while the backend has events of its own pending.
    # Pure Python: poll() on every pass.
    loop = multiloop.new_loop("epoll")
    try:
        poller = loop._poller
        calls = []
        real_poll = poller.poll

        def counting_poll(timeout):
            calls.append(timeout)
            return real_poll(timeout)

        poller.poll = counting_poll
        passes_before = loop.stats().iterations
        assert _ping_pong(loop, 600) == [b"X"] * 600
        passes = loop.stats().iterations - passes_before
        assert passes >= 1200  # two wake-ups a round trip
        if multiloop.compiled.ACTIVE:
            assert poller.native_wait is not None and poller.native_wait.active
            assert 1 <= len(calls) <= passes // 256 + 2, (len(calls), passes)
        else:
            assert poller.native_wait is None
            assert len(calls) >= passes - 2
    finally:
        loop.close()


def test_the_native_wait_is_inactive_while_a_rebuild_has_closed_fds_to_report_then_follows_the_new_set():
    import os

    loop = multiloop.new_loop("epoll")
    poller = loop._poller
    native = poller.native_wait
    if native is None:
        assert not multiloop.compiled.ACTIVE
        loop.close()
        pytest.skip("pure Python: no native wait")
    a, b = socket.socketpair()
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    try:
        loop.add_reader(a.fileno(), lambda: None)
        fd = a.fileno()
        os.close(os.dup(fd))
        a.close()  # closed behind the loop's back, its reader still registered
        poller._rebuild()  # what a suspect fd number or a stale registration triggers
        assert not native.active  # the INVALID report for fd waits in poll()'s pending list
        assert _ping_pong(loop, 3) == [b"X"] * 3  # poll() reported it (the core dropped fd), then native again
        assert native.active
        assert fd not in loop._fds
        assert len([ctx for ctx in errors if ctx.get("fd") == fd]) == 1  # reported once, as a dead fd
    finally:
        b.close()
        loop.close()
