"""``FdTable.entry_of``: the core's per-event lookup. Compiled, it reads a C array of borrowed pointers kept beside
``FdTable.entries`` (``multiloop/fdtable.pxd``); fds at or above 2**20 stay in the dict only. Whatever the
sequence of registrations, removals and clears, it must answer exactly what the dict says -- a stale pointer
there would be a crash, not a wrong answer. Runs in both modes (the pure one reads the dict: the same
contract, trivially).

The table is driven with a recording poller, not a kernel one, so that fd numbers no process can open (2**20,
2**31 - 1) reach the table as the core would hand them over.
"""

from __future__ import annotations

import asyncio
import socket

from hypothesis import given, settings
from hypothesis import strategies as st

import multiloop
from multiloop.backend import READ, WRITE
from multiloop.fdtable import FdTable

HIGH = [2**20 - 1, 2**20, 2**20 + 1, 2**31 - 1]
FDS = st.one_of(st.integers(0, 300), st.sampled_from(HIGH))


class RecordingPoller:
    """Accepts every fd; remembers the interest masks, as a kernel interface would."""

    def __init__(self) -> None:
        self.masks: dict[int, int] = {}

    def register(self, fd: int, mask: int) -> None:
        assert fd not in self.masks
        self.masks[fd] = mask

    def modify(self, fd: int, mask: int) -> None:
        assert fd in self.masks
        self.masks[fd] = mask

    def unregister(self, fd: int) -> None:
        del self.masks[fd]


def make_table() -> tuple[FdTable, RecordingPoller, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    poller = RecordingPoller()
    return FdTable(loop, poller, "recording", lambda: None), poller, loop  # type: ignore[arg-type]


def check_agrees(table: FdTable, fds: set[int]) -> None:
    for fd in fds | set(HIGH) | {0, 1, 63, 64, 65, 4096}:
        assert table.entry_of(fd) is table.entries.get(fd), fd


OPS = st.lists(st.tuples(st.sampled_from(["add_reader", "add_writer", "remove_reader", "remove_writer",
                                          "clear"]), FDS), max_size=60)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_entry_of_agrees_with_the_dict_after_any_sequence(ops):
    table, poller, loop = make_table()
    try:
        seen: set[int] = set()
        for op, fd in ops:
            seen.add(fd)
            if op == "clear":
                table.clear()
                poller.masks.clear()
            elif op.startswith("add"):
                getattr(table, op)(fd, lambda: None)
            else:
                getattr(table, op)(fd)
            check_agrees(table, seen)
            assert {fd: e.mask for fd, e in table.entries.items()} == poller.masks
    finally:
        table.clear()
        loop.close()


def test_an_fd_far_above_the_ones_before_grows_the_index_and_keeps_them():
    table, _, loop = make_table()
    try:
        table.add_reader(3, lambda: None)
        table.add_writer(70_000, lambda: None)  # far past the first allocation: the array grows
        table.add_reader(2**20, lambda: None)  # past the index: the dict alone
        assert table.entry_of(3).mask == READ
        assert table.entry_of(70_000).mask == WRITE
        assert table.entry_of(2**20).mask == READ
        assert table.entry_of(69_999) is None and table.entry_of(-1) is None
        table.remove_writer(70_000)
        assert table.entry_of(70_000) is None and table.entry_of(3) is not None
    finally:
        table.clear()
        loop.close()


def test_a_loop_dispatches_through_the_index_to_the_right_reader(backend):
    loop = multiloop.new_loop(backend=backend)
    pairs = [socket.socketpair() for _ in range(40)]
    try:
        got: list[int] = []
        for i, (a, _) in enumerate(pairs):
            loop.add_reader(a.fileno(), lambda i=i, a=a: (got.append(i), a.recv(1), loop.stop()))
        for i in (39, 0, 17):
            pairs[i][1].send(b"x")
            loop.run_forever()
            assert got[-1] == i
        loop.remove_reader(pairs[17][0].fileno())
        pairs[17][1].send(b"x")
        pairs[5][1].send(b"x")
        loop.run_forever()
        assert got[-1] == 5
    finally:
        loop.close()
        for a, b in pairs:
            a.close()
            b.close()
