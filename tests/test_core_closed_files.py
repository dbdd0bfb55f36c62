"""Removing the reader/writer of a file object that was closed after it was registered (every backend).

A closed socket's ``fileno()`` is -1. Stock asyncio's selector finds such an object among its registrations by
identity, and libraries depend on it: anyio closes a socket while a receive waits on it and removes the reader
from the waiting future's done callback, one pass later.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from multiloop import InvalidFdError


def test_remove_reader_and_writer_of_a_socket_closed_while_registered(loop):
    a, b = socket.socketpair()
    try:
        loop.add_reader(a, lambda: None)
        loop.add_writer(a, lambda: None)
        fd = a.fileno()
        a.close()
        assert loop.remove_reader(a) is True
        assert fd in loop._fdtable  # the writer is still registered
        assert loop.remove_writer(a) is True
        assert fd not in loop._fdtable
    finally:
        b.close()


def test_removing_a_closed_socket_that_is_not_registered_is_an_error_naming_the_backend(loop, backend):
    a, b = socket.socketpair()
    b.close()
    loop.add_reader(a, lambda: None)
    assert loop.remove_reader(a) is True
    a.close()
    with pytest.raises(InvalidFdError, match=f"{backend}: Invalid file descriptor: -1") as info:
        loop.remove_reader(a)
    assert isinstance(info.value, ValueError)  # what stock asyncio raises


def test_closing_a_socket_while_a_receive_waits_ends_the_receive_without_an_error(loop, run):
    # anyio's pattern: the receive waits on a future the reader resolves; close() closes the socket and
    # resolves the future; the future's done callback then removes the reader of the closed socket.
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    a, b = socket.socketpair()
    a.setblocking(False)

    def wait_readable(sock):
        fut = loop.create_future()
        loop.add_reader(sock, fut.set_result, None)
        fut.add_done_callback(lambda _: loop.remove_reader(sock))
        return fut

    async def receive(sock, waiting):
        while True:
            try:
                return sock.recv(100)
            except BlockingIOError:
                waiting.append(wait_readable(sock))
                await waiting[-1]
            except OSError:
                return "closed"

    async def main():
        waiting = []
        task = loop.create_task(receive(a, waiting))
        while not waiting:
            await asyncio.sleep(0)
        a.close()
        waiting[-1].set_result(None)
        assert await task == "closed"
        for _ in range(3):
            await asyncio.sleep(0)

    try:
        run(main())
    finally:
        b.close()
    assert errors == []
    assert len(loop._fdtable) == loop._waker_fd_count
