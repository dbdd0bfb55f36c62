"""Reader/writer registration: stock asyncio's semantics, and clear errors for bad fds, on every backend."""

from __future__ import annotations

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


def test_reader_callback_runs_when_data_arrives(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        got = loop.create_future()
        loop.add_reader(a, lambda: got.done() or got.set_result(a.recv(100)))
        b.send(b"ping")
        data = await got
        assert loop.remove_reader(a) is True
        return data

    assert run(main()) == b"ping"


def test_writer_callback_runs_when_socket_is_writable(loop, run, socketpair):
    a, _ = socketpair()

    async def main():
        ok = loop.create_future()
        loop.add_writer(a.fileno(), lambda: ok.done() or ok.set_result(True))
        assert await ok
        assert loop.remove_writer(a.fileno()) is True

    run(main())


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


def test_removing_the_reader_keeps_the_writer_registered(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        loop.add_reader(a, lambda: None)
        wrote = loop.create_future()
        loop.add_writer(a, lambda: wrote.done() or wrote.set_result(True))
        assert loop.remove_reader(a) is True
        assert await wrote
        assert loop.remove_writer(a) is True

    run(main())


def test_removing_the_writer_keeps_the_reader_registered(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        got = loop.create_future()
        loop.add_writer(a, lambda: None)
        loop.add_reader(a, lambda: got.done() or got.set_result(a.recv(10)))
        assert loop.remove_writer(a) is True
        b.send(b"still")
        assert await got == b"still"
        assert loop.remove_reader(a) is True

    run(main())


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


def test_regular_file_is_always_readable_on_every_backend(loop, run, tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"hello")

    async def main():
        with open(path, "rb") as f:
            got = loop.create_future()
            loop.add_reader(f, lambda: got.done() or got.set_result(os.read(f.fileno(), 100)))
            data = await got
            assert loop.remove_reader(f)
            assert loop.stats().always_ready_fds == 0
            return data

    assert run(main()) == b"hello"


def test_fd_closed_without_removing_reader_can_be_reused(loop, run):
    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        loop.add_reader(a.fileno(), lambda: None)
        fd = a.fileno()
        a.close()
        b.close()
        loop.remove_reader(fd)  # must not raise although the fd is gone
        c, d = socket.socketpair()
        c.setblocking(False)
        got = loop.create_future()
        loop.add_reader(c, lambda: got.done() or got.set_result(c.recv(10)))
        d.send(b"new")
        data = await got
        loop.remove_reader(c)
        c.close()
        d.close()
        return data

    assert run(main()) == b"new"


def test_peer_hangup_wakes_the_reader(loop, run, socketpair):
    a, b = socketpair()

    async def main():
        got = loop.create_future()
        loop.add_reader(a, lambda: got.done() or got.set_result(a.recv(10)))
        b.close()
        data = await got
        loop.remove_reader(a)
        return data

    assert run(main()) == b""


def test_a_closed_fd_without_removal_does_not_crash_the_loop(loop, run):
    async def main():
        r, w = os.pipe()
        loop.add_reader(r, lambda: None)
        os.close(r)
        os.close(w)
        for _ in range(5):
            await __import__("asyncio").sleep(0)
        loop.remove_reader(r)
        return "alive"

    assert run(main()) == "alive"
