"""pytest plugin (auto-loaded through the ``pytest11`` entry point): run your tests on multiloop backends.

For library authors who want their asyncio code tested on every backend:

- ``--multiloop-backends=epoll,poll`` (or ``all`` = every backend available here; default: the
  ``MULTILOOP_TEST_BACKENDS`` environment variable, else the backend ``new_loop()`` would pick) chooses the
  backends; any test that uses one of the fixtures below runs once per backend, with the backend in its id.
- ``multiloop_backend``: the backend name for this run of the test.
- ``multiloop_loop``: a fresh loop on it, closed (after shutting down async generators and the executor) when the
  test ends.
- ``multiloop_loop_factory``: a zero-argument factory, for ``asyncio.Runner`` / ``asyncio.run(loop_factory=)`` /
  anyio's ``backend_options={"loop_factory": ...}``.
- ``multiloop_policy``: a ``multiloop.EventLoopPolicy``; pytest-asyncio users override their
  ``event_loop_policy`` fixture with it::

      @pytest.fixture
      def event_loop_policy(multiloop_policy):
          return multiloop_policy

The plugin does nothing unless a test asks for one of these fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_FIXTURES = ("multiloop_backend", "multiloop_loop", "multiloop_loop_factory", "multiloop_policy")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("multiloop", "multiloop event loop backends")
    group.addoption("--multiloop-backends", default=None, metavar="NAMES",
                    help="comma-separated multiloop backends to run loop fixtures on, or 'all' "
                         "(default: $MULTILOOP_TEST_BACKENDS, else the automatic choice)")


def selected_backends(config: pytest.Config) -> list[str]:
    import multiloop

    value = config.getoption("--multiloop-backends") or os.environ.get("MULTILOOP_TEST_BACKENDS", "")
    value = value.strip()
    if value == "all":
        return [b.name for b in multiloop.backends() if b.available]
    if value:
        return [n for n in value.replace(",", " ").split() if n]
    return [multiloop.default_backend()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if any(name in metafunc.fixturenames for name in _FIXTURES):
        names = selected_backends(metafunc.config)
        metafunc.parametrize("multiloop_backend", names, ids=[f"multiloop-{n}" for n in names],
                             indirect=True, scope="function")


@pytest.fixture
def multiloop_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def multiloop_loop_factory(multiloop_backend: str) -> Callable[[], Any]:
    import multiloop

    return multiloop.loop_factory(multiloop_backend)


@pytest.fixture
def multiloop_loop(multiloop_backend: str) -> Iterator[Any]:
    import multiloop

    loop = multiloop.new_loop(multiloop_backend)
    try:
        yield loop
    finally:
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@pytest.fixture
def multiloop_policy(multiloop_backend: str) -> Any:
    import multiloop

    return multiloop.EventLoopPolicy(multiloop_backend)
