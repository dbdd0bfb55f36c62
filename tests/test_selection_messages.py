"""Selection through environment variables, and the errors users read: where a name came from, how to install
a plugin backend, why a plugin backend is missing. The process-wide registry is replaced by one without
entry-point plugins where a test needs "the trio plugin is not installed"."""

from __future__ import annotations

import warnings

import pytest
from test_entry_points import plugin_dir, run_with_plugins  # noqa: F401  (a real wheel with a broken plugin)

import multiloop
from multiloop import registry as registry_module
from multiloop.registry import Registry


@pytest.fixture
def no_plugins(monkeypatch):
    """The public API on a registry with the built-in backends only (as if no plugin were installed)."""
    monkeypatch.setattr(registry_module, "_registry", Registry(entry_points=False))
    for name in ("MULTILOOP_BACKEND", "MULTILOOP_AVOID"):
        monkeypatch.delenv(name, raising=False)
    return registry_module._registry


def _new_loop_backend(*args, **kwargs) -> str:
    loop = multiloop.new_loop(*args, **kwargs)
    try:
        return loop.backend
    finally:
        loop.close()


def test_avoiding_a_plugin_backend_that_is_not_installed_breaks_nothing(no_plugins, monkeypatch):
    monkeypatch.setenv("MULTILOOP_AVOID", "trio")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _new_loop_backend("poll") == "poll"
        assert _new_loop_backend() == multiloop.default_backend() == no_plugins.choose(environ={}).name
        assert _new_loop_backend(avoid=["trio"]) == no_plugins.choose(environ={}).name


def test_unknown_names_in_env_avoid_are_ignored_with_one_warning_naming_the_variable(no_plugins, monkeypatch):
    monkeypatch.setenv("MULTILOOP_AVOID", "epol")
    with pytest.warns(RuntimeWarning, match=r"\$MULTILOOP_AVOID names unknown multiloop backend 'epol'.*ignored"):
        assert _new_loop_backend() == no_plugins.choose(environ={}).name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _new_loop_backend()      # said once per process, not on every loop
        _new_loop_backend("poll")  # a named backend does not look at MULTILOOP_AVOID at all


def test_named_backends_ignore_avoid_lists(no_plugins, monkeypatch):
    monkeypatch.setenv("MULTILOOP_AVOID", "poll")
    assert _new_loop_backend("poll") == "poll"
    assert _new_loop_backend("select", avoid=["select", "nonexistent"]) == "select"


def test_rejections_say_which_avoid_list_avoided_a_backend(no_plugins, monkeypatch):
    monkeypatch.setenv("MULTILOOP_AVOID", "epoll,poll")
    with pytest.raises(multiloop.NoBackendAvailableError) as info:
        multiloop.new_loop(avoid=["select"])
    msg = str(info.value)
    assert "epoll: avoided ($MULTILOOP_AVOID)" in msg and "poll: avoided ($MULTILOOP_AVOID)" in msg
    assert "select: avoided (avoid=)" in msg


def test_unknown_name_from_env_backend_says_it_came_from_the_environment(no_plugins, monkeypatch):
    monkeypatch.setenv("MULTILOOP_BACKEND", "nope")
    with pytest.raises(multiloop.UnknownBackendError) as info:
        multiloop.new_loop()
    msg = str(info.value)
    assert "'nope' ($MULTILOOP_BACKEND)" in msg and "available here: " in msg
    with pytest.raises(multiloop.UnknownBackendError, match=r"'nope' \(backend=\)"):
        multiloop.new_loop("nope")


def test_plugin_backend_that_is_not_installed_says_how_to_install_it(no_plugins, monkeypatch):
    with pytest.raises(multiloop.UnknownBackendError) as info:
        multiloop.new_loop("trio")
    msg = str(info.value)
    assert "'trio' (backend=) cannot be used" in msg
    assert "pip install multiloop-asyncio-trio" in msg
    monkeypatch.setenv("MULTILOOP_BACKEND", "trio")
    with pytest.raises(multiloop.UnknownBackendError, match=r"'trio' \(\$MULTILOOP_BACKEND\).*pip install"):
        multiloop.default_backend()


def test_backend_of_a_broken_plugin_is_reported_with_the_plugin_error(no_plugins):
    class Broken:
        @multiloop.hookimpl
        def multiloop_backends(self):
            raise ImportError("libfancy.so.1: cannot open shared object file")

    no_plugins.register_plugin(Broken(), name="fancy", origin="fancy-backend 2.0")
    with pytest.raises(multiloop.UnknownBackendError) as info:
        no_plugins.choose("fancy", environ={})
    msg = str(info.value)
    assert "'fancy' (backend=) cannot be used: its plugin (fancy-backend 2.0) failed to load" in msg
    assert "ImportError: libfancy.so.1: cannot open shared object file" in msg
    assert "unknown" not in msg
    # and avoiding it is no error
    assert no_plugins.choose(avoid=["fancy"], environ={}).name == no_plugins.choose(environ={}).name


def test_backend_whose_entry_point_fails_to_import_is_reported_with_the_import_error(plugin_dir):  # noqa: F811
    out = run_with_plugins(plugin_dir, "import multiloop; multiloop.new_loop('missing')")
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("multiloop.errors.UnknownBackendError: multiloop backend 'missing' (backend=) cannot "
                           "be used: its plugin (multiloop_testplugins 1.0) failed to load: import failed: "
                           "ModuleNotFoundError"), out.stderr


def test_a_typo_in_avoid_from_code_is_still_an_error(no_plugins):
    with pytest.raises(multiloop.UnknownBackendError, match=r"avoid= names unknown multiloop backend 'epol'"):
        multiloop.new_loop(avoid=["epol"])
