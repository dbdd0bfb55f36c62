"""Reader/writer registration: stock asyncio's semantics, and clear errors for bad fds, on every backend.

What depends on the backend (readers and writers run when ready, one side kept when the other is removed,
regular files, hang-ups, fd numbers reused after a close) is checked by the backend-author kit's checks,
which tests/test_kit_checks.py runs on every backend; closed fds in tests/test_dead_fds.py."""

from __future__ import annotations

import asyncio
import os
import resource
import socket

import pytest

import multiloop


def _drain(sock):
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        pass




def test_adding_a_second_reader_replaces_and_cancels_the_first(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        calls = []
        got = loop.create_future()
        loop.add_reader(a, calls.append, "first")
        first = loop._fdtable.reader(a.fileno())
        loop.add_reader(a, lambda: (calls.append("second"), _drain(a), got.done() or got.set_result(None)))
        assert first.cancelled()
        b.send(b"x")
        await got
        loop.remove_reader(a)
        return calls

    assert run(main()) == ["second"]


@pytest.mark.parametrize("side", ["reader", "writer"])
def test_a_handle_cancelled_behind_the_loops_back_is_dropped_at_its_next_event_not_run(loop, run, socketpair,
                                                                                       side):
    """Stock asyncio's rule: a reader or writer handle cancelled without remove_reader()/remove_writer() loses
    its registration when its fd is next ready (else a level-triggered wait would report the fd forever), and
    its callback does not run. Each side alone: the common case, a readable fd, takes a shorter path in the pass."""
    a, b = socketpair()

    async def main():
        calls = []
        getattr(loop, f"add_{side}")(a, calls.append, side)
        getattr(loop._fdtable, side)(a.fileno()).cancel()
        b.send(b"x")  # a is readable now, and writable already
        await asyncio.sleep(0)  # resumed by a pass that waited (with a zero timeout) and saw the event first
        return calls, a.fileno() in loop._fdtable

    assert run(main()) == ([], False)




def test_remove_returns_false_when_nothing_was_registered(loop, socketpair):
    a, _ = socketpair()
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False
    loop.add_reader(a, lambda: None)
    assert loop.remove_writer(a) is False
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


def test_remove_on_a_closed_loop_returns_false(backend, socketpair):
    lp = multiloop.new_loop(backend)
    a, _ = socketpair()
    lp.add_reader(a, lambda: None)
    lp.close()
    assert lp.remove_reader(a) is False


def test_file_objects_with_fileno_are_accepted(loop, run, socketpair):
    a, b = socketpair()

    class Wrapper:
        def fileno(self):
            return a.fileno()

    async def main():
        got = loop.create_future()
        loop.add_reader(Wrapper(), lambda: got.done() or got.set_result(a.recv(10)))
        b.send(b"w")
        data = await got
        assert loop.remove_reader(Wrapper())
        return data

    assert run(main()) == b"w"


@pytest.mark.parametrize("bad", ["3", 3.0, None, object(), True])
def test_objects_that_are_not_fds_are_refused_with_the_backend_named(loop, bad):
    with pytest.raises(ValueError) as info:
        loop.add_reader(bad, lambda: None)
    assert isinstance(info.value, multiloop.InvalidFdError)
    assert loop.backend in str(info.value)
    assert "Invalid file object" in str(info.value)


def test_negative_fd_is_refused(loop):
    with pytest.raises(ValueError, match=f"{loop.backend}: Invalid file descriptor: -1"):
        loop.add_reader(-1, lambda: None)


def test_closed_socket_is_refused(loop):
    s = socket.socket()
    s.close()
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.add_writer(s, lambda: None)


def test_closed_fd_number_is_refused_naming_backend_and_fd(loop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(multiloop.BadFdError) as info:
        loop.add_reader(r, lambda: None)
    assert info.value.fd == r and info.value.backend == loop.backend
    assert str(r) in str(info.value) and loop.backend in str(info.value)
    assert r not in loop._fdtable  # nothing half-registered
    # and the loop still works
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_fd_above_fd_setsize_is_refused_by_select_only(loop, run):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} does not allow an fd above 1024")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    a, b = socket.socketpair()
    high = 1050
    os.dup2(a.fileno(), high)
    try:
        if loop.backend == "select":
            with pytest.raises(multiloop.FdLimitError) as info:
                loop.add_reader(high, lambda: None)
            assert info.value.fd == high and "FD_SETSIZE" in str(info.value) and "select" in str(info.value)
            assert isinstance(info.value, ValueError)
        else:
            async def main():
                got = loop.create_future()
                loop.add_reader(high, lambda: got.done() or got.set_result(os.read(high, 10)))
                b.send(b"hi")
                data = await got
                loop.remove_reader(high)
                return data
            assert run(main()) == b"hi"
    finally:
        os.close(high)
        a.close()
        b.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))





def test_an_fd_owner_collected_without_releasing_it_owns_nothing(loop):
    # Ownership holds its owner weakly (a transport dropped without close() must not keep its fd blocked).
    import gc

    class Owner:
        def is_closing(self):
            return False

    a, b = socket.socketpair()
    with a, b:
        owner = Owner()
        loop._fdtable.claim(a.fileno(), owner)
        assert loop._fdtable.owner(a.fileno()) is owner
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(a.fileno(), lambda: None)
        del owner
        gc.collect()
        assert loop._fdtable.owner(a.fileno()) is None
        loop.add_reader(a.fileno(), lambda: None)  # free again
        assert loop.remove_reader(a.fileno())
