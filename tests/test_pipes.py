"""connect_read_pipe / connect_write_pipe on every backend: pipes, FIFOs, ptys, sockets, regular files."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap

import pytest


@pytest.fixture
def pipe_fds():
    fds = []

    def make():
        r, w = os.pipe()
        fds.extend((r, w))
        return r, w

    yield make
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


# ------------------------------------------------------------------------------------------ read pipes
def test_read_pipe_delivers_data_then_eof_then_connection_lost(loop, run, recorder):
    r, w = os.pipe()
    rf = os.fdopen(r, "rb", 0)

    async def main():
        proto = recorder()
        transport, _ = await loop.connect_read_pipe(lambda: proto, rf)
        os.write(w, b"hello ")
        os.write(w, b"world")
        os.close(w)
        await proto.lost
        return proto, transport

    proto, transport = run(main())
    assert bytes(proto.data) == b"hello world"
    assert proto.events == ["made", "data", "eof", "lost"]
    assert proto.exc is None
    assert transport.is_closing()
    assert rf.closed


def test_read_pipe_pause_reading_stops_data_until_resumed(loop, run, recorder):
    r, w = os.pipe()

    async def main():
        proto = recorder()
        transport, _ = await loop.connect_read_pipe(lambda: proto, os.fdopen(r, "rb", 0))
        transport.pause_reading()
        assert not transport.is_reading()
        os.write(w, b"queued")
        for _ in range(5):  # several loop passes with data waiting: none may be delivered
            await asyncio.sleep(0)
        assert proto.data == b""
        transport.resume_reading()
        assert transport.is_reading()
        os.close(w)
        await proto.lost
        return proto

    assert run(main()).data == b"queued"


def test_read_pipe_close_calls_connection_lost_once_and_closes_fd(loop, run, recorder):
    r, w = os.pipe()
    rf = os.fdopen(r, "rb", 0)

    async def main():
        proto = recorder()
        transport, _ = await loop.connect_read_pipe(lambda: proto, rf)
        transport.close()
        transport.close()
        await proto.lost
        return proto

    try:
        proto = run(main())
    finally:
        os.close(w)
    assert proto.events == ["made", "lost"]
    assert rf.closed


def test_regular_file_is_read_to_eof_on_every_backend(loop, run, tmp_path):
    payload = b"line of a redirected stdin\n" * 50_000  # several reads of max_size
    path = tmp_path / "data.txt"
    path.write_bytes(payload)

    fds_before = loop.stats().fds

    async def main():
        with open(path, "rb", buffering=0) as f:
            reader = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), f)
            data = await reader.read()
            for _ in range(3):
                await asyncio.sleep(0)  # let connection_lost run
            return data

    assert run(main()) == payload
    # The transport removed its reader at EOF, so the loop is not left spinning on an always-ready fd.
    assert loop.stats().always_ready_fds == 0
    assert loop.stats().fds == fds_before


def test_empty_regular_file_gives_immediate_eof(loop, run, tmp_path, recorder):
    path = tmp_path / "empty"
    path.write_bytes(b"")

    async def main():
        with open(path, "rb", buffering=0) as f:
            proto = recorder()
            await loop.connect_read_pipe(lambda: proto, f)
            await proto.lost
            return proto

    assert run(main()).events == ["made", "eof", "lost"]


def test_dev_null_reads_as_empty(loop, run, recorder):
    async def main():
        with open(os.devnull, "rb", buffering=0) as f:
            proto = recorder()
            await loop.connect_read_pipe(lambda: proto, f)
            await proto.lost
            return proto

    assert run(main()).events == ["made", "eof", "lost"]


def test_fifo_read_pipe(loop, run, tmp_path, recorder):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    wfd = os.open(path, os.O_WRONLY)

    async def main():
        proto = recorder()
        await loop.connect_read_pipe(lambda: proto, os.fdopen(rfd, "rb", 0))
        os.write(wfd, b"through a fifo")
        os.close(wfd)
        await proto.lost
        return proto

    assert run(main()).data == b"through a fifo"


def test_pty_read_pipe_ends_quietly_when_slave_closes(loop, run, recorder):
    master, slave = os.openpty()
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main():
        proto = recorder()
        await loop.connect_read_pipe(lambda: proto, os.fdopen(master, "rb", 0))
        os.write(slave, b"typed\n")
        # Wait for the data before closing: on Linux a pty master loses unread input when the slave closes.
        while b"typed" not in proto.data:
            await asyncio.sleep(0.01)
        os.close(slave)
        await proto.lost
        return proto

    proto = run(main())
    assert b"typed" in proto.data
    # EIO is how a pty says "the other side is gone": connection_lost(EIO), no exception handler call.
    assert proto.exc is None or (isinstance(proto.exc, OSError) and proto.exc.errno == 5)
    assert errors == []


def test_socket_read_pipe(loop, run, socketpair, recorder):
    a, b = socketpair()

    async def main():
        proto = recorder()
        await loop.connect_read_pipe(lambda: proto, a)
        b.sendall(b"over a socket")
        b.shutdown(socket.SHUT_WR)
        await proto.lost
        return proto

    assert run(main()).data == b"over a socket"


def test_read_pipe_rejects_a_directory(loop, run, tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(ValueError, match="pipes"):
            run(loop.connect_read_pipe(asyncio.Protocol, fd_object(fd)))
    finally:
        os.close(fd)


class fd_object:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        pass


def test_fd_owned_by_a_pipe_transport_refuses_add_reader(loop, run):
    r, w = os.pipe()

    async def main():
        transport, _ = await loop.connect_read_pipe(asyncio.Protocol, os.fdopen(r, "rb", 0))
        with pytest.raises(RuntimeError, match="used by transport"):
            loop.add_reader(r, lambda: None)
        transport.close()
        await asyncio.sleep(0)

    try:
        run(main())
    finally:
        os.close(w)


def test_stdin_redirected_from_a_file_is_read_by_a_child(backend, tmp_path):
    """``python app.py < data.txt`` reads all of stdin through connect_read_pipe (stock asyncio on epoll:
    EPERM)."""
    data = tmp_path / "data.txt"
    payload = b"0123456789" * 100_000
    data.write_bytes(payload)
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent("""
        import asyncio, sys
        import multiloop

        async def main():
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
            data = await reader.read()
            print(loop.backend, len(data))

        multiloop.run(main(), backend=sys.argv[1])
    """))
    with open(data, "rb") as stdin:
        done = subprocess.run([sys.executable, str(script), backend], stdin=stdin, capture_output=True,
                              timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == [backend, str(len(payload))]


# ----------------------------------------------------------------------------------------- write pipes
def test_write_pipe_writes_everything_and_closes_after_flush(loop, run, recorder):
    r, w = os.pipe()
    payload = b"x" * 1_000_000  # far more than a pipe holds: must be buffered and flushed

    async def main():
        proto = recorder()
        transport, _ = await loop.connect_write_pipe(lambda: proto, os.fdopen(w, "wb", 0))
        transport.write(payload)
        assert transport.get_write_buffer_size() > 0
        transport.close()  # graceful: flush first
        received = bytearray()
        reader_done = loop.create_future()

        def readable():
            chunk = os.read(r, 65536)
            if chunk:
                received.extend(chunk)
            else:
                loop.remove_reader(r)
                reader_done.set_result(None)

        loop.add_reader(r, readable)
        await proto.lost
        await reader_done
        return proto, received

    try:
        proto, received = run(main())
    finally:
        os.close(r)
    assert received == payload
    assert proto.exc is None
    assert proto.events[0] == "made" and proto.events[-1] == "lost"


def test_write_pipe_flow_control_pauses_above_high_and_resumes_at_low(loop, run, recorder):
    r, w = os.pipe()

    async def main():
        proto = recorder()
        transport, _ = await loop.connect_write_pipe(lambda: proto, os.fdopen(w, "wb", 0))
        transport.set_write_buffer_limits(high=1000, low=100)
        assert transport.get_write_buffer_limits() == (100, 1000)
        transport.write(b"y" * 200_000)  # fills the kernel pipe, then the buffer
        assert proto.events == ["made", "pause"]
        os.set_blocking(r, False)
        while "resume" not in proto.events:
            try:
                os.read(r, 65536)
            except BlockingIOError:
                pass
            await asyncio.sleep(0)
        assert transport.get_write_buffer_size() <= 100
        transport.abort()
        await proto.lost
        return proto

    try:
        proto = run(main())
    finally:
        os.close(r)
    assert proto.events == ["made", "pause", "resume", "lost"]


def test_write_buffer_limits_are_validated(loop, run):
    r, w = os.pipe()

    async def main():
        transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(w, "wb", 0))
        with pytest.raises(ValueError, match="high"):
            transport.set_write_buffer_limits(high=1, low=2)
        transport.set_write_buffer_limits(low=10)
        assert transport.get_write_buffer_limits() == (10, 40)
        transport.close()
        await asyncio.sleep(0)

    try:
        run(main())
    finally:
        os.close(r)


def test_write_pipe_with_pending_data_loses_connection_with_broken_pipe_when_reader_closes(loop, run, recorder):
    r, w = os.pipe()
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main():
        proto = recorder()
        transport, _ = await loop.connect_write_pipe(lambda: proto, os.fdopen(w, "wb", 0))
        transport.write(b"z" * 1_000_000)
        os.close(r)
        await proto.lost
        transport.write(b"more")  # after the loss: counted and dropped, no exception
        return proto

    proto = run(main())
    assert isinstance(proto.exc, BrokenPipeError)
    assert errors == []


def test_idle_write_pipe_notices_reader_closed(loop, run, recorder):
    r, w = os.pipe()

    async def main():
        proto = recorder()
        await loop.connect_write_pipe(lambda: proto, os.fdopen(w, "wb", 0))
        os.close(r)
        await proto.lost
        return proto

    proto = run(main())
    assert proto.events == ["made", "lost"]
    assert proto.exc is None


def test_write_pipe_to_a_pty(loop, run, recorder):
    master, slave = os.openpty()

    async def main():
        proto = recorder()
        transport, _ = await loop.connect_write_pipe(lambda: proto, os.fdopen(slave, "wb", 0))
        transport.write(b"to the tty\n")
        transport.close()
        await proto.lost

    try:
        run(main())
        assert b"to the tty" in os.read(master, 1024)
    finally:
        os.close(master)


def test_write_pipe_rejects_a_regular_file(loop, run, tmp_path):
    with open(tmp_path / "out", "wb", buffering=0) as f:
        with pytest.raises(ValueError, match="pipes, sockets and character devices"):
            run(loop.connect_write_pipe(asyncio.Protocol, f))


def test_write_rejects_str(loop, run):
    r, w = os.pipe()

    async def main():
        transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(w, "wb", 0))
        with pytest.raises(TypeError):
            transport.write("text")
        transport.close()
        await asyncio.sleep(0)

    try:
        run(main())
    finally:
        os.close(r)


def test_connect_pipe_on_closed_loop_raises(loop):
    loop.close()
    r, w = os.pipe()
    try:
        coro = loop.connect_read_pipe(asyncio.Protocol, fd_object(r))
        with pytest.raises(RuntimeError, match="closed"):
            coro.send(None)
    finally:
        os.close(r)
        os.close(w)
