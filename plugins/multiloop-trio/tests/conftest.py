"""Fixtures for the trio bridge's tests: no test may leak a file descriptor or leave a loop running.

These tests also run from the repository root (``testpaths``), in environments that may not have the plugin
installed (tox's select/poll/epoll cells): there the whole directory is skipped, with that reason.
"""

from __future__ import annotations

import gc

import pytest

from multiloop.kit.harness import open_fds, restore_ctrl_c

# test_shutdown raises SIGINT: started in the background with it ignored, it would wait for its timeout.
restore_ctrl_c()

try:
    import multiloop_trio  # noqa: F401
except ImportError:
    # The test modules import trio and multiloop_trio: do not collect them at all, and say so.
    collect_ignore_glob = ["test_*.py"]

    def pytest_report_header() -> str:
        return ("multiloop-trio is not installed: plugins/multiloop-trio/tests not collected (tox's trio and "
                "all environments install it and run them)")

@pytest.fixture(autouse=True, params=["multiplexed", "per-fd"])
def waiting(request, monkeypatch):
    """Every test runs with both ways of waiting: all fds through one inner epoll/kqueue poller (the default
    where one exists), and the fallback, one trio task per fd and direction (``MULTILOOP_TRIO_INNER=none``).
    Subprocesses inherit the choice."""
    monkeypatch.setenv("MULTILOOP_TRIO_INNER", "auto" if request.param == "multiplexed" else "none")
    return request.param


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
