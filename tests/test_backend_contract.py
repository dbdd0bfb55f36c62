"""The Poller contract as declared on the ABC: what the core calls, when, and what a backend gets for free."""

from __future__ import annotations

import asyncio
import errno
import os
import select
import types

import pytest

import multiloop
from multiloop import READ, Poller
from multiloop.errors import BadFdError, PollerError, UnpollableFdError


class PollBased(Poller):
    """A minimal third-party poller: select.poll, nothing optional overridden."""

    name = "pollbased"

    def __init__(self):
        self._p = select.poll()
        self.polls = 0

    def register(self, fd, events):
        multiloop.check_fd_open(fd, self.name)
        self._p.register(fd, events)

    def modify(self, fd, events):
        self._p.modify(fd, events)

    def unregister(self, fd):
        self._p.unregister(fd)

    def poll(self, timeout):
        self.polls += 1
        return self._p.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999)))

    def close(self):
        pass


def _loop_with(poller: Poller) -> multiloop.EventLoop:
    return multiloop.EventLoop(poller)


def _echo_once(loop) -> bytes:
    a, b = __import__("socket").socketpair()
    try:
        async def main():
            got = loop.create_future()
            loop.add_reader(a, lambda: got.done() or got.set_result(a.recv(10)))
            b.send(b"hello")
            await asyncio.sleep(0.01)  # a timer too
            data = await got
            loop.remove_reader(a)
            return data

        return loop.run_until_complete(asyncio.wait_for(main(), 10))
    finally:
        a.close()
        b.close()


def test_a_poller_that_does_not_drive_is_driven_by_the_core():
    poller = PollBased()
    loop = _loop_with(poller)
    try:
        assert _echo_once(loop) == b"hello"
        assert poller.polls > 0
    finally:
        loop.close()


def test_a_drive_method_is_not_used_unless_drives_loop_is_declared():
    class HasDriveButDoesNotDeclareIt(PollBased):
        def drive(self, iteration):
            raise AssertionError("the core must not guess from the presence of a method")

    loop = _loop_with(HasDriveButDoesNotDeclareIt())
    try:
        assert _echo_once(loop) == b"hello"
    finally:
        loop.close()


def test_drives_loop_makes_run_forever_call_drive_and_the_default_drive_works():
    calls = []

    class Driving(PollBased):
        drives_loop = True

        def drive(self, iteration):
            calls.append(iteration)
            super().drive(iteration)  # the documented default: the plain loop around poll()

    poller = Driving()
    loop = _loop_with(poller)
    try:
        assert _echo_once(loop) == b"hello"
        assert calls and all(c is loop.iteration for c in calls)
        assert poller.polls > 0
    finally:
        loop.close()


def test_statistics_reach_loop_stats_read_only(backend, loop):
    stats = loop.stats()
    assert isinstance(stats.backend_stats, types.MappingProxyType)
    with pytest.raises(TypeError):
        stats.backend_stats["registered"] = 99  # type: ignore[index]
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in stats.backend_stats.items())
    assert stats.backend_stats == loop._poller.statistics()
    if "registered" in stats.backend_stats:
        # the only registration of a fresh loop is its wake-up fd (none when the backend wakes itself)
        assert stats.backend_stats["registered"] == loop._waker.fd_count


def test_a_poller_without_statistics_shows_none():
    loop = _loop_with(PollBased())
    try:
        assert dict(loop.stats().backend_stats) == {}
    finally:
        loop.close()


def test_loop_stats_stay_hashable_and_comparable():
    loop = _loop_with(PollBased())
    try:
        a, b = loop.stats(), loop.stats()
        assert a == b and hash(a) == hash(b)
    finally:
        loop.close()


@pytest.mark.parametrize("err, kind", [(errno.EBADF, BadFdError), (errno.EPERM, UnpollableFdError),
                                       (errno.ENOMEM, PollerError)])
def test_translate_oserror_is_public_and_names_backend_and_fd(err, kind):
    exc = multiloop.translate_oserror(OSError(err, os.strerror(err)), "mine", "register", 7)
    assert type(exc) is kind
    assert exc.backend == "mine" and exc.fd == 7 and exc.errno == err
    assert str(exc).startswith("mine: cannot watch fd 7")


def test_check_fd_open_raises_bad_fd_error_for_a_closed_fd():
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(BadFdError, match=f"mine: cannot watch fd {r}"):
        multiloop.check_fd_open(r, "mine")


def test_regular_files_work_with_a_backend_written_from_the_docs(tmp_path):
    """The reason translate_oserror is public: EPERM must become UnpollableFdError or files break."""
    class EpollFromTheDocs(PollBased):
        def __init__(self):
            self._ep = select.epoll()
            self.polls = 0

        def register(self, fd, events):
            try:
                self._ep.register(fd, events)
            except OSError as exc:
                raise multiloop.translate_oserror(exc, self.name, "register", fd) from None

        def modify(self, fd, events):
            self._ep.modify(fd, events)

        def unregister(self, fd):
            try:
                self._ep.unregister(fd)
            except OSError:
                pass

        def poll(self, timeout):
            return self._ep.poll(timeout)

        def close(self):
            self._ep.close()

    path = tmp_path / "data"
    path.write_bytes(b"file data")
    loop = _loop_with(EpollFromTheDocs())
    try:
        with open(path, "rb") as f:
            got = loop.create_future()
            loop.add_reader(f, lambda: got.done() or got.set_result(os.read(f.fileno(), 100)))
            assert loop.run_until_complete(asyncio.wait_for(got, 10)) == b"file data"
            loop.remove_reader(f)
    finally:
        loop.close()


def test_everything_a_backend_may_implement_is_declared_on_the_abc():
    declared = {name for name in vars(Poller) if not name.startswith("_")}
    assert {"register", "modify", "unregister", "poll", "close", "fileno", "make_waker", "drive",
            "drives_loop", "discard_stale", "statistics", "name"} <= declared
    assert "max_fd" not in declared
    for name in ("register", "modify", "unregister", "poll", "close"):
        assert getattr(Poller, name).__isabstractmethod__
    assert Poller.drives_loop is False and PollBased().make_waker() is None


def test_builtin_pollers_declare_only_what_the_abc_declares():
    from multiloop.registry import get_registry

    public = {name for name in vars(Poller) if not name.startswith("_")}
    for name in ("select", "poll", "epoll"):
        poller = get_registry().get(name).factory()
        try:
            extra = {n for n in vars(type(poller)) if not n.startswith("_")} - public
            assert not extra, f"{name} poller has undeclared public attributes {extra}"
            assert isinstance(poller.statistics(), dict) and poller.statistics()["registered"] == 0
        finally:
            poller.close()
    assert READ == select.POLLIN
