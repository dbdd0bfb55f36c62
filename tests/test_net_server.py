"""``Server`` lifecycle (each Python's own stock semantics: 3.11's wait_closed, 3.14's serve_forever closing its
clients, per-connection contexts) and the accept loop, on every backend."""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from multiloop.net.server import Server


class Conn(asyncio.Protocol):
    """Server-side protocol: records connections in ``registry`` and echoes."""

    def __init__(self, registry: list[Conn]) -> None:
        registry.append(self)
        self.transport = None
        self.lost = asyncio.get_running_loop().create_future() if _running() else None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(exc)


def _running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


async def connect(loop, server):
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, server.sockets[0].getsockname())
    except BaseException:
        sock.close()
        raise
    return sock


async def until(predicate, passes=1000):
    """Yield to the loop until ``predicate()``; fail (not hang) after ``passes`` loop passes."""
    for _ in range(passes):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def test_server_is_multiloops_own_abstract_server(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        assert isinstance(server, Server) and isinstance(server, asyncio.AbstractServer)
        assert server.get_loop() is loop
        assert server.is_serving()
        assert len(server.sockets) == 1 and server.sockets[0].getsockname()[0] == "127.0.0.1"
        assert "sockets=" in repr(server)
        server.close()
        assert not server.is_serving() and server.sockets == ()
        await server.wait_closed()

    run(main())


def test_start_serving_false_listens_only_when_started(loop, run):
    conns: list[Conn] = []

    async def main():
        server = await loop.create_server(lambda: Conn(conns), "127.0.0.1", 0, start_serving=False)
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):  # bound but not listening yet (3.13 behaviour)
            (await connect(loop, server)).close()
        await server.start_serving()
        assert server.is_serving()
        client = await connect(loop, server)
        await until(lambda: conns)
        client.close()
        server.close()
        await server.wait_closed()

    run(main())


PY = sys.version_info[:2]


@pytest.mark.skipif(PY < (3, 12), reason="3.12+ semantics; 3.11's wait_closed is tested below")
def test_wait_closed_waits_for_the_last_connection(loop, run):
    conns: list[Conn] = []

    async def main():
        server = await loop.create_server(lambda: Conn(conns), "127.0.0.1", 0)
        client = await connect(loop, server)
        await until(lambda: conns and conns[0].transport)
        server.close()
        waiter = loop.create_task(server.wait_closed())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiter.done()  # closed, but a connection is still open
        client.close()
        await waiter
        await server.wait_closed()  # returns at once from now on

    run(main())


@pytest.mark.skipif(PY >= (3, 12), reason="3.11 semantics")
def test_on_311_wait_closed_returns_at_once_when_the_server_is_closed(loop, run):
    conns: list[Conn] = []

    async def main():
        server = await loop.create_server(lambda: Conn(conns), "127.0.0.1", 0)
        client = await connect(loop, server)
        await until(lambda: conns and conns[0].transport)
        early = loop.create_task(server.wait_closed())  # called while open: waits for close and clients
        await asyncio.sleep(0)
        server.close()
        await server.wait_closed()  # closed: returns although a connection is still open
        for _ in range(5):
            await asyncio.sleep(0)
        assert not early.done()
        client.close()
        await early

    run(main())


def test_cancelled_serve_forever_with_a_hanging_client_follows_this_pythons_rule(loop, run):
    # 3.11: returns at once (wait_closed does not wait); 3.12/3.13: waits for the client; 3.14+: closes it.
    conns: list[Conn] = []

    async def main():
        server = await loop.create_server(lambda: Conn(conns), "127.0.0.1", 0)
        task = loop.create_task(server.serve_forever())
        client = await connect(loop, server)
        try:
            await until(lambda: conns and conns[0].transport)
            task.cancel()
            if (3, 12) <= PY < (3, 14):
                for _ in range(5):
                    await asyncio.sleep(0)
                assert not task.done()  # blocked on the client
                client.close()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert conns[0].lost.done() is (PY >= (3, 12))
        finally:
            client.close()
            await server.wait_closed()

    run(main())


def test_a_contextvar_set_by_one_connection_is_not_seen_by_the_next(loop, run):
    var = contextvars.ContextVar("var", default="unset")
    seen = []

    class Proto(asyncio.Protocol):
        def __init__(self):
            seen.append(("factory", var.get()))
            var.set("set by a connection")

        def connection_made(self, transport):
            seen.append(("made", var.get()))
            transport.close()

    async def main():
        var.set("server")
        server = await loop.create_server(Proto, "127.0.0.1", 0)
        var.set("changed after create_server")
        for i in range(3):
            (await connect(loop, server)).close()
            await until(lambda i=i: len(seen) == 2 * (i + 1))
        server.close()
        await server.wait_closed()

    run(main())
    # Each connection starts from a fresh copy: of the server's creation-time context on 3.15+, else of the
    # context serving started in (create_server's, here); never of what an earlier connection set.
    start = "server"
    assert seen == [("factory", start), ("made", "set by a connection")] * 3


def test_a_server_connections_callbacks_see_the_context_this_pythons_rule_gives(loop, run):
    # 3.15+ (CPython gh-140947): every callback of an accepted connection runs in one context, so a variable
    # a task sets before calling resume_reading() is not seen by connection_lost. Before 3.15 each callback
    # runs in a copy of the context it was registered from: resume_reading() from that task registers the
    # reader there, and connection_lost (scheduled by the next read) sees the task's variable.
    var = contextvars.ContextVar("var", default="unset")
    seen = {}
    done = loop.create_future()

    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            transport.pause_reading()
            loop.create_task(self.resume_from_a_task())

        async def resume_from_a_task(self):
            var.set("set in a task")
            self.transport.resume_reading()

        def connection_lost(self, exc):
            seen["lost"] = var.get()
            done.set_result(None)

    async def main():
        server = await loop.create_server(Proto, "127.0.0.1", 0)
        client = await connect(loop, server)
        client.close()  # EOF reaches the server once it reads again
        await done
        server.close()
        await server.wait_closed()

    run(main())
    assert seen["lost"] == ("unset" if PY >= (3, 15) else "set in a task")


def test_one_detach_too_many_is_an_error_not_a_wait_closed_that_never_returns(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        server._attach()  # 3.11/3.12 call style (a bare count)
        server._detach()
        with pytest.raises(RuntimeError, match="_detach"):
            server._detach()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)

    run(main())


def test_wait_closed_blocks_while_open_even_without_connections(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        waiter = loop.create_task(server.wait_closed())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiter.done()
        server.close()
        await waiter

    run(main())


def test_close_clients_and_abort_clients(loop, run):
    conns: list[Conn] = []

    async def main():
        server = await loop.create_server(lambda: Conn(conns), "127.0.0.1", 0)
        c1 = await connect(loop, server)
        c2 = await connect(loop, server)
        await until(lambda: len(conns) == 2 and all(c.transport for c in conns))
        server.close()
        server.close_clients()
        await server.wait_closed()
        await asyncio.gather(*(c.lost for c in conns))  # (3.11's wait_closed does not wait for them)
        assert await loop.sock_recv(c1, 10) == b""
        c1.close()
        c2.close()

        server = await loop.create_server(lambda: Conn(conns), "127.0.0.1", 0)
        c3 = await connect(loop, server)
        await until(lambda: len(conns) == 3 and conns[2].transport)
        conns[2].transport.write(b"x" * 5_000_000)  # buffered: abort must not wait for it
        server.close()
        server.abort_clients()
        await server.wait_closed()
        c3.close()

    run(main())


def test_serve_forever_is_cancellable_and_closes_the_server(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, start_serving=False)
        task = loop.create_task(server.serve_forever())
        await until(server.is_serving)
        with pytest.raises(RuntimeError, match="already being awaited"):
            await server.serve_forever()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not server.is_serving() and server.sockets == ()
        with pytest.raises(RuntimeError, match="is closed"):
            await server.serve_forever()

    run(main())


def test_close_ends_serve_forever(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        server.close()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())


def test_async_with_closes_and_waits(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        async with server as entered:
            assert entered is server
            assert server.is_serving()
        assert not server.is_serving() and server.sockets == ()

    run(main())


def test_one_readiness_event_accepts_up_to_backlog_connections(loop, run):
    conns: list[Conn] = []

    async def main():
        # listen(2) queues up to 3 connections on Linux; accept() takes at most 2 per event.
        server = await loop.create_server(lambda: Conn(conns), "127.0.0.1", 0, backlog=2, start_serving=False)
        await server.start_serving()
        listener = server._listeners[0]
        loop._fdtable.remove_reader(listener.fd)  # drive the accept callback by hand
        clients = []
        for _ in range(3):
            c = socket.socket()
            c.settimeout(10)
            c.connect(server.sockets[0].getsockname())  # completes in the kernel's queue
            clients.append(c)
        listener.on_readable()
        assert len(conns) == 2
        listener.on_readable()
        assert len(conns) == 3
        listener.on_readable()  # queue empty: returns quietly
        assert len(conns) == 3
        for c in clients:
            c.close()
        server.close()
        await server.wait_closed()

    run(main())


def test_protocol_factory_error_is_reported_and_the_server_keeps_serving(loop, run):
    errors: list[dict] = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    conns: list[Conn] = []
    fail = [True]

    def factory():
        if fail[0]:
            fail[0] = False
            raise ZeroDivisionError
        return Conn(conns)

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        bad = await connect(loop, server)
        assert await loop.sock_recv(bad, 10) == b""  # the failed connection is closed, not leaked
        good = await connect(loop, server)
        await loop.sock_sendall(good, b"echo")
        assert await loop.sock_recv(good, 10) == b"echo"
        assert isinstance(errors[0]["exception"], ZeroDivisionError)
        bad.close()
        good.close()
        server.close()
        await server.wait_closed()

    run(main())


EMFILE_SCRIPT = textwrap.dedent("""
    import asyncio, errno, resource, socket, sys
    import multiloop
    import multiloop.net.server as server_mod

    server_mod.ACCEPT_RETRY_DELAY = 0.05  # keep the test quick; the default is stock asyncio's 1 s

    async def main():
        loop = asyncio.get_running_loop()
        reports = []
        loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
        made = []

        class Proto(asyncio.Protocol):
            def connection_made(self, transport):
                made.append(transport)

        server = await loop.create_server(Proto, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        # Only a few descriptors left: fill them with our own sockets until socket() says EMFILE.
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        hogs = []
        while True:
            try:
                hogs.append(socket.socket())
            except OSError as exc:
                assert exc.errno == errno.EMFILE, exc
                break
        # Free exactly one fd for a client; the server's accept() then has none left.
        hogs.pop().close()
        client = socket.socket()
        client.setblocking(False)
        try:
            client.connect(addr)
        except BlockingIOError:
            pass
        for _ in range(1000):
            if reports:
                break
            await asyncio.sleep(0.01)
        assert reports and reports[0]["message"] == "socket.accept() out of system resource", reports
        assert reports[0]["exception"].errno == errno.EMFILE
        assert not made
        for h in hogs:
            h.close()
        for _ in range(1000):  # the paused listener comes back and accepts the queued client
            if made:
                break
            await asyncio.sleep(0.01)
        assert made, "server did not resume accepting"
        second = socket.socket()
        second.setblocking(False)
        await loop.sock_connect(second, addr)
        for _ in range(1000):
            if len(made) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(made) == 2
        client.close(); second.close()
        server.close()
        await server.wait_closed()
        print("OK", len(reports))

    multiloop.run(main(), backend=sys.argv[1])
""")


def test_server_survives_descriptor_exhaustion(backend, tmp_path):
    script = tmp_path / "emfile.py"
    script.write_text(EMFILE_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), backend], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK")


def test_a_client_collected_without_detaching_does_not_keep_wait_closed_waiting(loop):
    # Connections keeps plain weak references: one whose transport is gone counts as no client.
    import gc

    from multiloop.net.server import Connections

    class FakeTransport:
        pass

    connections = Connections()
    kept, dropped = FakeTransport(), FakeTransport()
    connections.attach(kept)
    connections.attach(dropped)
    waiter = loop.create_future()
    connections.waiters.append(waiter)
    del dropped
    gc.collect()
    assert connections.live_clients() == [kept]
    connections.close()
    assert not waiter.done()  # ``kept`` is still connected
    connections.detach(kept)
    assert waiter.done()
