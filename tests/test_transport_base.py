"""What every fd transport kind shares (multiloop/transport_base.py), checked on each kind and every backend:
the one fatal-error rule with each kind's data (stock asyncio's, per kind), connection_lost exactly once,
closing on a closed loop, the unclosed-transport warning, fd ownership."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import socket
import warnings

import pytest

KINDS = ["socket", "datagram", "read_pipe", "write_pipe"]


@pytest.fixture
def open_transport(loop, recorder):
    """``await open_transport(kind)``: (transport, protocol, fd) over a fresh socketpair or pipe; the other end
    is closed when the test ends."""
    others = []

    async def make(kind):
        proto = recorder()
        if kind in ("socket", "datagram"):
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM if kind == "socket" else socket.SOCK_DGRAM)
            a.setblocking(False)
            others.append(b.close)
            waiter = loop.create_future()
            if kind == "socket":
                tr = loop._make_socket_transport(a, proto, waiter)
            else:
                tr = loop._make_datagram_transport(a, proto, None, waiter)
            await waiter
            return tr, proto, a.fileno()
        r, w = os.pipe()
        if kind == "read_pipe":
            others.append(lambda: os.close(w))
            tr, _ = await loop.connect_read_pipe(lambda: proto, os.fdopen(r, "rb", 0))
            return tr, proto, r
        others.append(lambda: os.close(r))
        tr, _ = await loop.connect_write_pipe(lambda: proto, os.fdopen(w, "wb", 0))
        return tr, proto, w

    yield make
    for close in others:
        close()


# (kind, error, reported to the exception handler?) -- stock asyncio's behaviour on 3.11-3.13.
FATAL_CASES = [
    ("socket", ConnectionResetError(errno.ECONNRESET, "reset"), False),
    ("socket", OSError(errno.EBADF, "bad fd"), False),
    ("socket", RuntimeError("bug"), True),
    ("datagram", OSError(errno.EBADF, "bad fd"), False),
    ("datagram", RuntimeError("bug"), True),
    ("read_pipe", OSError(errno.EIO, "pty closed"), False),
    ("read_pipe", OSError(errno.EBADF, "bad fd"), True),
    ("read_pipe", RuntimeError("bug"), True),
    ("write_pipe", BrokenPipeError(errno.EPIPE, "reader gone"), False),
    ("write_pipe", OSError(errno.EBADF, "bad fd"), False),
    ("write_pipe", RuntimeError("bug"), True),
]


@pytest.mark.parametrize("kind, exc, reported", FATAL_CASES,
                         ids=[f"{k}-{type(e).__name__}-{getattr(e, 'errno', None)}" for k, e, _ in FATAL_CASES])
def test_fatal_error_rule_per_kind(loop, run, open_transport, kind, exc, reported):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def main():
        tr, proto, _ = await open_transport(kind)
        tr._fatal_error(exc, "Fatal error on transport")
        assert tr.is_closing()
        assert await proto.lost is exc

    run(main())
    assert [ctx["exception"] for ctx in contexts] == ([exc] if reported else [])


@pytest.mark.parametrize("kind", KINDS)
def test_connection_lost_exactly_once_after_close_then_abort(loop, run, open_transport, kind):
    async def main():
        tr, proto, _ = await open_transport(kind)
        tr.close()
        tr.abort()
        tr.close()
        await proto.lost
        await asyncio.sleep(0)
        assert proto.events.count("lost") == 1 and proto.events[0] == "made"

    run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_the_fd_is_owned_until_connection_lost_then_closed(loop, run, open_transport, kind):
    async def main():
        tr, proto, fd = await open_transport(kind)
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(fd, lambda: None)
        tr.close()
        await proto.lost
        with pytest.raises(OSError) as info:
            os.fstat(fd)  # closed with the connection
        assert info.value.errno == errno.EBADF

    run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_closing_on_a_closed_loop_releases_the_fd_at_once(loop, run, open_transport, kind):
    tr, proto, fd = run(open_transport(kind))
    loop.close()
    tr.close()  # no "Event loop is closed": nothing can be scheduled any more, the fd is released now
    assert tr.is_closing() and not proto.lost.done()
    with pytest.raises(OSError):
        os.fstat(fd)


@pytest.mark.parametrize("kind", KINDS)
def test_an_unclosed_transport_warns_and_closes_its_fd(loop, run, open_transport, kind):
    tr, proto, fd = run(open_transport(kind))
    loop.close()  # nothing registered any more: only our references keep the transport alive
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del tr, proto
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "unclosed transport" in str(w.message)
               for w in caught)
    with pytest.raises(OSError):
        os.fstat(fd)
