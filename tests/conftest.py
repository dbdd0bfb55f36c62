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


def backends_under_test() -> list[str]:
    env = os.environ.get("MULTILOOP_TEST_BACKENDS", "").strip()
    if env and env != "all":
        return [n for n in env.replace(",", " ").split() if n]
    return [b.name for b in multiloop.backends() if b.available]


BACKENDS = backends_under_test()


FD_DIR = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"  # Linux; macOS/BSD (fdescfs)


def open_fds() -> dict[int, str]:
    """fd -> what it points at (readlink on Linux; the fd's type elsewhere)."""
    result = {}
    for name in os.listdir(FD_DIR):
        try:
            result[int(name)] = os.readlink(f"{FD_DIR}/{name}")
        except OSError:
            try:
                result[int(name)] = str(os.fstat(int(name)).st_mode)
            except OSError:
                pass  # the listing's own fd, gone already
    return result


def assert_no_fd_leak(before: dict[int, str]) -> None:
    gc.collect()
    after = open_fds()
    leaked = {fd: target for fd, target in after.items() if fd not in before}
    assert not leaked, f"file descriptors leaked: {leaked}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


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
