"""pytest plugin (auto-loaded through the ``pytest11`` entry point): run a test suite on multiloop backends.

Facts that shape it:

- pytest-asyncio (>= 1.4) asks the ``pytest_asyncio_loop_factories(config, item)`` hook (``firstresult``) for a
  mapping *name -> zero-argument loop factory* and parametrizes every asyncio test over it at the test's loop
  scope, the names becoming the ids; sync tests are never parametrized. Once an implementation is registered
  it must answer for every asyncio item (``None`` is a usage error), so the implementation is registered only
  when the user selected backends: installing multiloop must not change how anyone's suite runs.
- pytest caches a parametrized fixture by its *param value*: a module- or session-scoped loop survives from one
  test to the next only if every item receives an equal factory. Factories are therefore small frozen
  dataclasses, equal when they name the same backend.
- pytest-asyncio calls the factory while setting up its runner fixture, so a factory that calls
  ``pytest.skip()`` skips the test (for a module-scoped loop: every test sharing it), which is how an
  unavailable backend is reported through a hook that can only return callables.
- anyio's plugin runs ``@pytest.mark.anyio`` tests with the backend given by the ``anyio_backend`` fixture;
  ``("asyncio", {"loop_factory": f})`` selects asyncio on a loop made by ``f``. A fixture registered by a plugin
  after anyio's plugin overrides anyio's default, and a ``conftest.py`` fixture overrides both.

Selecting backends: ``--multiloop-backends=NAMES``, else ``$MULTILOOP_TEST_BACKENDS``, else the ini option
``multiloop_backends``. NAMES is a comma-separated list of backend names and the words ``all`` (every backend
that can run here) and ``auto`` (the one ``multiloop.new_loop()`` picks). A name no plugin provides is one
usage error at start-up; a backend that cannot run here (or whose plugin failed to load) is skipped with the
reason. With a selection, pytest-asyncio tests and anyio tests run once per backend. Without one, only tests
that ask for the fixtures below are parametrized (over ``auto``).

- ``@pytest.mark.multiloop(backends=[...], skip=[...])`` pins a test (or module, via ``pytestmark``) to the
  named backends instead of the selection, and/or skips some (``skip`` may also be a mapping name -> reason).
- ``multiloop_backend``: the backend name for this run of the test.
- ``multiloop_loop``: a fresh, not running loop on it, closed (after shutting down async generators and the
  executor) when the test ends.
- ``multiloop_loop_factory``: a zero-argument factory for ``asyncio.Runner`` / ``asyncio.run(loop_factory=)``.
- ``multiloop_anyio_backend``: ``("asyncio", {"loop_factory": ...})`` for anyio's ``anyio_backend``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

ENV_TEST_BACKENDS = "MULTILOOP_TEST_BACKENDS"
OPTION = "--multiloop-backends"
INI = "multiloop_backends"
MARKER = "multiloop"
_FIXTURES = ("multiloop_backend", "multiloop_loop", "multiloop_loop_factory", "multiloop_anyio_backend")
_SELECTION_KEY = pytest.StashKey["Selection"]()


# -- what the user selected -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """The backends chosen at start-up, each with None (can run here) or the reason it cannot."""

    backends: tuple[tuple[str, str | None], ...]
    #: Where the choice came from (None: nothing was selected; the fixtures then use ``auto``).
    source: str | None

    @property
    def active(self) -> bool:
        return self.source is not None


def _split(value: str) -> list[str]:
    return [n for n in value.replace(",", " ").split() if n]


def _known_backends() -> dict[str, str | None]:
    """name -> None (can run here) or why not: every backend, every broken plugin, and the plugin backends
    whose distribution is not installed (the reason says how to install it)."""
    import multiloop
    from multiloop.registry import PLUGIN_HINTS, get_registry

    known = {row.name: row.reason for row in multiloop.backends()}
    for name in PLUGIN_HINTS:
        if name not in known:
            known[name] = get_registry().missing_reason(name)
    return known


def parse_selection(value: str, source: str) -> list[tuple[str, str | None]]:
    """Resolve ``all`` / ``auto`` / names. Raises ``pytest.UsageError`` naming every unknown name at once."""
    import multiloop

    known = _known_backends()
    tokens = _split(value)
    if not tokens:
        raise pytest.UsageError(f"{source} is empty; give backend names, 'all' or 'auto' "
                                f"(known backends: {', '.join(known)})")
    unknown = [t for t in tokens if t not in known and t not in ("all", "auto")]
    if unknown:
        raise pytest.UsageError(
            f"{source} names unknown multiloop backend{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(n) for n in unknown)}; known: {', '.join(known)} (or 'all', 'auto')")
    chosen: dict[str, str | None] = {}
    for token in tokens:
        if token == "all":
            for name, reason in known.items():
                if reason is None:
                    chosen.setdefault(name, None)
        elif token == "auto":
            try:
                chosen.setdefault(multiloop.default_backend(), None)
            except multiloop.MultiloopError as exc:
                raise pytest.UsageError(f"{source}: 'auto' finds no backend: {exc}") from None
        else:
            chosen.setdefault(token, known[token])
    return list(chosen.items())


def _read_selection(config: pytest.Config) -> Selection:
    for source, value in ((OPTION, config.getoption(OPTION)),
                          (f"${ENV_TEST_BACKENDS}", os.environ.get(ENV_TEST_BACKENDS)),
                          (f"ini option {INI}", config.getini(INI))):
        if value is not None and (value.strip() or source == OPTION):
            return Selection(tuple(parse_selection(value, source)), source)
    return Selection((), None)


def get_selection(config: pytest.Config) -> Selection:
    """The selection made at start-up (``pytest_configure``)."""
    return config.stash[_SELECTION_KEY]


def _auto() -> tuple[tuple[str, str | None], ...]:
    import multiloop

    try:
        return ((multiloop.default_backend(), None),)
    except multiloop.MultiloopError as exc:  # e.g. every backend avoided: say so on each test
        return (("auto", str(exc)),)


def backends_for(config: pytest.Config, node: pytest.Item) -> list[tuple[str, str | None]]:
    """The backends one test runs on, as (name, None or the reason to skip it): the selection (or ``auto``),
    replaced by the marker's ``backends=`` and minus its ``skip=``."""
    selection = get_selection(config)
    rows = list(selection.backends) if selection.active else list(_auto())
    marker = node.get_closest_marker(MARKER)
    if marker is None:
        return rows
    if marker.args:
        pytest.fail(f"{node.nodeid}: mark.multiloop takes keyword arguments only: backends=[...], skip=[...]",
                    pytrace=False)
    extra = set(marker.kwargs) - {"backends", "skip"}
    if extra:
        pytest.fail(f"{node.nodeid}: mark.multiloop got unexpected arguments {sorted(extra)}; "
                    f"it takes backends=[...] and skip=[...]", pytrace=False)
    known = _known_backends()
    pinned = marker.kwargs.get("backends")
    skip = marker.kwargs.get("skip") or ()
    skip_reasons = dict(skip) if isinstance(skip, Mapping) else {n: None for n in _names(skip, node, "skip")}
    named = (_names(pinned, node, "backends") if pinned is not None else []) + list(skip_reasons)
    unknown = [n for n in named if n not in known]
    if unknown:
        pytest.fail(f"{node.nodeid}: mark.multiloop names unknown backend(s) {', '.join(map(repr, unknown))}; "
                    f"known: {', '.join(known)}", pytrace=False)
    if pinned is not None:
        rows = [(n, known[n]) for n in dict.fromkeys(_names(pinned, node, "backends"))]
    result = []
    for name, reason in rows:
        if name in skip_reasons:
            why = skip_reasons[name]
            reason = "skipped for this test by mark.multiloop" + (f": {why}" if why else "")
        result.append((name, reason))
    return result


def _names(value: Any, node: Any, what: str) -> list[str]:
    if isinstance(value, str):
        value = _split(value)
    if not all(isinstance(n, str) for n in value):
        pytest.fail(f"{node.nodeid}: mark.multiloop {what}= must be backend names (strings), got {value!r}",
                    pytrace=False)
    return list(value)


# -- loop factories that pytest can cache by value --------------------------------------------------------------
@dataclass(frozen=True)
class BackendLoopFactory:
    """``multiloop.new_loop(backend)`` as a value: equal factories share a module/session-scoped loop."""

    backend: str

    def __call__(self) -> asyncio.AbstractEventLoop:
        import multiloop

        return multiloop.new_loop(self.backend)


@dataclass(frozen=True)
class SkippedBackend:
    """Stands in for a backend that will not run: calling it skips the test, with the reason."""

    backend: str
    reason: str

    def __call__(self) -> asyncio.AbstractEventLoop:
        pytest.skip(f"multiloop backend {self.backend!r}: {self.reason}")


def loop_factory_for(name: str, reason: str | None) -> Callable[[], asyncio.AbstractEventLoop]:
    return BackendLoopFactory(name) if reason is None else SkippedBackend(name, reason)


# -- pytest hooks ----------------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("multiloop", "multiloop event loop backends")
    group.addoption(OPTION, default=None, metavar="NAMES",
                    help="run pytest-asyncio and anyio tests (and tests using the multiloop_* fixtures) on these "
                         "multiloop backends: comma-separated names, 'all' (every backend that can run here) or "
                         f"'auto' (the automatic choice). Default: ${ENV_TEST_BACKENDS}, else the ini option "
                         f"{INI}, else stock asyncio for pytest-asyncio/anyio tests and 'auto' for the fixtures")
    parser.addini(INI, default=None,
                  help=f"default for {OPTION} (the command line and ${ENV_TEST_BACKENDS} take precedence)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(backends=None, skip=None): run this test on the named multiloop backends instead of the "
        "selected ones, and/or skip some of them (skip may map names to reasons)")
    selection = _read_selection(config)
    config.stash[_SELECTION_KEY] = selection
    if not selection.active:
        return
    if config.pluginmanager.hasplugin("asyncio"):  # pytest-asyncio's entry-point name
        if hasattr(config.hook, "pytest_asyncio_loop_factories"):
            config.pluginmanager.register(_PytestAsyncioFactories(), "multiloop-pytest-asyncio")
        else:
            config.issue_config_time_warning(pytest.PytestConfigWarning(
                f"{OPTION}: this pytest-asyncio has no pytest_asyncio_loop_factories hook (it needs >= 1.4), "
                "so its tests keep running on stock asyncio"), stacklevel=2)
    from . import pytest_anyio

    config.pluginmanager.register(pytest_anyio, "multiloop-anyio")


def pytest_report_header(config: pytest.Config) -> str | None:
    selection = config.stash.get(_SELECTION_KEY, None)
    if selection is None or not selection.active:
        return None
    parts = [name if reason is None else f"{name} (skipped: {reason})" for name, reason in selection.backends]
    return f"multiloop backends ({selection.source}): {', '.join(parts)}"


class _PytestAsyncioFactories:
    """Registered only when backends were selected (see the module docstring)."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_asyncio_loop_factories(self, config: pytest.Config,
                                      item: pytest.Item) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
        return {name: loop_factory_for(name, reason) for name, reason in backends_for(config, item)}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not any(name in metafunc.fixturenames for name in _FIXTURES):
        return
    rows = backends_for(metafunc.config, metafunc.definition)
    params = [pytest.param(name, id=name, marks=() if reason is None else
                           pytest.mark.skip(reason=f"multiloop backend {name!r}: {reason}"))
              for name, reason in rows]
    # Module scope: anyio's runner (and any module-scoped async fixture) lives as long as its backend does.
    metafunc.parametrize("multiloop_backend", params, indirect=True, scope="module")


# -- fixtures --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def multiloop_backend(request: pytest.FixtureRequest) -> str:
    """The multiloop backend name this run of the test is for."""
    return str(request.param)


@pytest.fixture(scope="module")
def multiloop_loop_factory(multiloop_backend: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A zero-argument loop factory on this run's backend."""
    return BackendLoopFactory(multiloop_backend)


@pytest.fixture(scope="module")
def multiloop_anyio_backend(multiloop_backend: str) -> tuple[str, dict[str, Any]]:
    """anyio's backend spec for asyncio on this run's multiloop backend."""
    return ("asyncio", {"loop_factory": BackendLoopFactory(multiloop_backend)})


@pytest.fixture
def multiloop_loop(multiloop_backend: str) -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh loop on this run's backend, shut down and closed when the test ends."""
    import multiloop

    loop = multiloop.new_loop(multiloop_backend)
    try:
        yield loop
    finally:
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
