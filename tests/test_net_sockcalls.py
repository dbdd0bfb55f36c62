"""``multiloop.net.sockcalls.recv_now``: socket.recv on a non-blocking socket, with "would block" returned as
None. Checked against socket.recv itself, compiled and pure."""

from __future__ import annotations

import errno
import socket

import pytest

from multiloop.net.sockcalls import recv_now


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_nothing_queued_is_none(pair):
    a, _ = pair
    assert recv_now(a, 100) is None


def test_returns_what_is_queued_up_to_n(pair):
    a, b = pair
    b.send(b"hello world")
    assert recv_now(a, 5) == b"hello"
    assert recv_now(a, 100) == b" world"
    assert recv_now(a, 100) is None


def test_zero_bytes_and_eof(pair):
    a, b = pair
    b.send(b"x")
    assert recv_now(a, 0) == b""
    b.close()
    assert recv_now(a, 100) == b"x"
    assert recv_now(a, 100) == b""  # EOF


def test_a_closed_socket_fails_as_socket_recv_does(pair):
    a, _ = pair
    a.close()
    with pytest.raises(OSError) as expected:
        a.recv(1)
    with pytest.raises(OSError) as got:
        recv_now(a, 1)
    assert got.value.errno == expected.value.errno == errno.EBADF
    assert type(got.value) is type(expected.value)


def test_a_negative_size_fails_as_socket_recv_does(pair):
    a, _ = pair
    with pytest.raises(ValueError):
        recv_now(a, -1)


def test_a_subclass_recv_is_called(pair):
    class Counting(socket.socket):
        calls = 0

        def recv(self, n, flags=0):
            Counting.calls += 1
            return super().recv(n, flags)

    a, b = pair
    c = Counting(fileno=a.detach())
    try:
        c.setblocking(False)
        b.send(b"x")
        assert recv_now(c, 10) == b"x"
        assert recv_now(c, 10) is None
        assert Counting.calls == 2
    finally:
        c.close()
