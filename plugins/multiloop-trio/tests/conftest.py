"""Fixtures for the trio bridge's tests: no test may leak a file descriptor or leave a loop running."""

from __future__ import annotations

import gc
import os

import pytest


def open_fds() -> dict[int, str]:
    result = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            result[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return result


@pytest.fixture(autouse=True)
def no_fd_leak():
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    leaked = {fd: t for fd, t in open_fds().items() if fd not in before}
    assert not leaked, f"file descriptors leaked: {leaked}"


@pytest.fixture
def loop():
    import multiloop

    lp = multiloop.new_loop("trio")
    try:
        yield lp
    finally:
        if not lp.is_closed():
            lp.run_until_complete(lp.shutdown_asyncgens())
            lp.run_until_complete(lp.shutdown_default_executor())
            lp.close()
