"""Shared fixtures: every loop-level test runs once per backend.

Backends under test: ``MULTILOOP_TEST_BACKENDS`` (comma-separated; tox sets it per environment), else every
backend available on this machine (trio included when the multiloop-asyncio-trio plugin is installed).
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket

import pytest

import multiloop
from multiloop.kit.harness import open_fds, restore_ctrl_c

# Started in the background with SIGINT ignored, the Ctrl-C tests would wait for their timeout (see there).
restore_ctrl_c()


def backends_under_test() -> list[str]:
    env = os.environ.get("MULTILOOP_TEST_BACKENDS", "").strip()
    if env and env != "all":
        return [n for n in env.replace(",", " ").split() if n]
    return [b.name for b in multiloop.backends() if b.available]


BACKENDS = backends_under_test()


def assert_no_fd_leak(before: dict[int, str]) -> None:
    gc.collect()
    after = open_fds()
    leaked = {fd: target for fd, target in after.items() if fd not in before}
    assert not leaked, f"file descriptors leaked: {leaked}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def backends_selected() -> list[str]:
    """Every backend the ``backend`` fixture runs a test on, in order (for tests that treat them unequally)."""
    return list(BACKENDS)


@pytest.fixture
def loop(backend: str):
    """A fresh loop on ``backend``; closed afterwards, and no fd may outlive it."""
    gc.collect()
    before = open_fds()
    lp = multiloop.new_loop(backend)
    try:
        yield lp
    finally:
        if not lp.is_closed():
            if not lp.is_running():
                lp.run_until_complete(lp.shutdown_asyncgens())
                lp.run_until_complete(lp.shutdown_default_executor())
            lp.close()
        del lp
        assert_no_fd_leak(before)


@pytest.fixture
def run(loop):
    """``run(coro, timeout=10)``: run a coroutine on the test's loop, failing (not hanging) on timeout."""

    def runner(coro, timeout: float = 10.0):
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    return runner


@pytest.fixture
def socketpair():
    pairs = []

    def make(*args):
        a, b = socket.socketpair(*args)
        a.setblocking(False)
        b.setblocking(False)
        pairs.append((a, b))
        return a, b

    yield make
    for a, b in pairs:
        a.close()
        b.close()


# ----------------------------------------------------------------------------------- shared protocols
class Recorder(asyncio.Protocol):
    """Records every callback of a stream, pipe or datagram protocol, in order.

    ``events``: "made", "data" (once per run of data), "eof", "pause", "resume", "lost". ``data``: the bytes
    received; ``received``: (datagram, address) pairs; ``errors``: what error_received got. ``made``,
    ``got_data`` and ``got_eof`` resolve at the first such callback, ``lost`` with connection_lost's argument
    (also kept in ``exc``). ``keep_open`` is what eof_received answers; ``echo=True`` sends each datagram back
    prefixed with ``echo:``. ``wait_for(predicate)`` waits until a callback makes it true; ``until(n)`` for n
    bytes or the end of the connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, echo: bool = False) -> None:
        self.echo = echo
        self.events: list[str] = []
        self.transport: asyncio.BaseTransport | None = None
        self.data = bytearray()
        self.received: list[tuple[bytes, object]] = []
        self.errors: list[Exception] = []
        self.eof = False
        self.keep_open = False
        self.exc: BaseException | None = None
        self.made = loop.create_future()
        self.got_data = loop.create_future()
        self.got_eof = loop.create_future()
        self.lost = loop.create_future()
        self._waiter: asyncio.Future | None = None

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data):
        assert type(data) is bytes
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        if not self.got_data.done():
            self.got_data.set_result(None)
        self._changed()

    def eof_received(self):
        self.events.append("eof")
        self.eof = True
        self.got_eof.set_result(None)
        return self.keep_open

    def datagram_received(self, data, addr):
        assert type(data) is bytes
        self.received.append((data, addr))
        if self.echo:
            self.transport.sendto(b"echo:" + data, addr)
        self._changed()

    def error_received(self, exc):
        self.errors.append(exc)
        self._changed()

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append("lost")
        self.exc = exc
        self.lost.set_result(exc)
        self._changed()

    def _changed(self):
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_for(self, predicate):
        while not predicate():
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    async def until(self, nbytes):
        await self.wait_for(lambda: len(self.data) >= nbytes or self.lost.done())


@pytest.fixture
def recorder(loop):
    """The :class:`Recorder` protocol class bound to the test's loop: ``recorder()`` makes one, the class is
    its own protocol factory (``loop.create_server(recorder, ...)``), and tests may subclass it."""

    class BoundRecorder(Recorder):
        def __init__(self, **kwargs) -> None:
            super().__init__(loop, **kwargs)

    return BoundRecorder


class Echo(asyncio.Protocol):
    """Writes back whatever it receives."""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class Client(asyncio.Protocol):
    """Collects what it receives in ``data``; ``lost`` resolves with connection_lost's argument."""

    def __init__(self):
        self.transport = None
        self.data = bytearray()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data

    def connection_lost(self, exc):
        self.lost.set_result(exc)


@pytest.fixture
def echo_protocol():
    """A protocol class (and factory) that echoes what it receives."""
    return Echo


@pytest.fixture
def client_protocol():
    """A protocol class (and factory, inside a running loop) that collects what it receives."""
    return Client


@pytest.fixture
def aclose():
    """``await aclose(*things)``: close stream writers, servers (anything with close/wait_closed) and
    transports, then wait until the ones that can say so are closed."""

    async def close_all(*things):
        for thing in things:
            thing.close()
        for thing in things:
            wait_closed = getattr(thing, "wait_closed", None)
            if wait_closed is not None:
                await wait_closed()

    return close_all
