"""``multiloop.wakeup.Waker``: one write per burst until the loop drains it, nothing written after close (the fd
number may belong to someone else by then). Compiled, the write and the drain are C syscalls that keep the GIL
(``wakeup.pxd``); interpreted, ``os.eventfd_write``/``os.write``. The same contract either way, checked on the
fd itself.
"""

from __future__ import annotations

import os
import select
import threading

import pytest

from multiloop.wakeup import Waker


class RecordingTable:
    """The one FdRegistry method a Waker uses."""

    def __init__(self) -> None:
        self.readers: dict[int, object] = {}

    def add_reader(self, fd: int, callback: object) -> None:
        self.readers[fd] = callback


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


@pytest.fixture
def waker():
    table = RecordingTable()
    w = Waker(table, None)  # type: ignore[arg-type]
    yield w, table
    w.close()


def test_a_burst_of_wakes_is_one_write_until_the_loop_drains(waker):
    w, table = waker
    fd = w.fd
    assert fd >= 0 and table.readers[fd] is not None
    assert not readable(fd)
    for _ in range(100):
        w.wake()
    assert readable(fd)
    if hasattr(os, "eventfd_read"):
        assert os.eventfd_read(fd) == 1  # the counter: one write for the whole burst
        assert not readable(fd)
        w.wake()  # still pending (the loop has not drained): nothing written
        assert not readable(fd)


def test_draining_empties_the_fd_and_rearms_the_next_wake(waker):
    w, table = waker
    fd = w.fd
    w.wake()
    drain = table.readers[fd]
    drain()  # type: ignore[operator]
    assert not readable(fd)
    drain()  # nothing to read: "would block" is not an error
    w.wake()
    assert readable(fd)


def test_wakes_from_many_threads_leave_the_fd_readable_once_drained_never_lost(waker):
    w, table = waker
    fd = w.fd
    drain = table.readers[fd]
    for _ in range(50):
        threads = [threading.Thread(target=w.wake) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert readable(fd)  # at least one wake wrote
        drain()  # type: ignore[operator]
        assert not readable(fd)


def test_a_wake_after_close_writes_to_no_fd():
    table = RecordingTable()
    w = Waker(table, None)  # type: ignore[arg-type]
    w.close()
    r, wfd = os.pipe()  # reuses the closed number (the lowest free one): neither end may get a byte
    try:
        w.wake()
        assert w.fd == -1
        assert not readable(r)
    finally:
        os.close(r)
        os.close(wfd)


def test_a_custom_wake_is_called_every_time_and_no_fd_is_made():
    calls = []
    table = RecordingTable()
    w = Waker(table, lambda: calls.append(1))  # type: ignore[arg-type]
    for _ in range(3):
        w.wake()
    assert calls == [1, 1, 1]
    assert w.fd == -1 and w.fd_count == 0 and not table.readers
    w.close()
