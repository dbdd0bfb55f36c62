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
