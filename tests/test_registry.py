"""Backend selection rules and plugin isolation, on registries built from real pluggy plugin objects."""

from __future__ import annotations

import select
import sys

import pytest

import multiloop
from multiloop.pollers.poll import PollPoller
from multiloop.registry import Registry


class _Plugin:
    """A runtime pluggy plugin offering the given descriptors."""

    def __init__(self, *descriptors):
        self.descriptors = list(descriptors)

    @multiloop.hookimpl
    def multiloop_backends(self):
        return self.descriptors


def _backend(name, priority=50, caps=(), reason=None, auto=True):
    return multiloop.Backend(name=name, priority=priority, capabilities=frozenset(caps),
                             probe=lambda: reason, factory=PollPoller, auto=auto)


@pytest.fixture
def registry():
    return Registry(entry_points=False)


def test_builtin_backends_are_registered_through_the_hook(registry):
    assert {"select", "poll", "epoll", "kqueue"} <= set(registry.names())
    assert all(info.origin == "built-in" for info in registry.infos())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll is Linux-only")
def test_auto_choice_on_linux_is_epoll(registry):
    assert registry.choose(environ={}).name == "epoll"


def test_explicit_name_beats_environment(registry):
    assert registry.choose("poll", environ={"MULTILOOP_BACKEND": "select"}).name == "poll"


def test_environment_beats_priority(registry):
    assert registry.choose(environ={"MULTILOOP_BACKEND": "select"}).name == "select"


def test_required_capabilities_filter_the_automatic_choice(registry):
    assert registry.choose(require=["regular_files"], environ={}).name == "poll"
    assert registry.choose(require=["fork_safe", "unlimited_fds"], environ={}).name == "poll"


def test_avoid_and_env_avoid_skip_backends(registry):
    assert registry.choose(avoid=["epoll"], environ={}).name == "poll"
    assert registry.choose(environ={"MULTILOOP_AVOID": "epoll,poll"}).name == "select"


def test_unknown_backend_error_lists_available_ones(registry):
    with pytest.raises(multiloop.UnknownBackendError) as info:
        registry.choose("nope", environ={})
    msg = str(info.value)
    assert "'nope'" in msg and "epoll, poll, select" in msg
    assert isinstance(info.value, LookupError)


def test_unavailable_backend_error_says_why(registry):
    with pytest.raises(multiloop.BackendUnavailableError) as info:
        registry.choose("kqueue", environ={})
    assert "kqueue" in str(info.value) and "not available" in str(info.value)
    assert info.value.backend == "kqueue"


def test_named_backend_lacking_a_required_capability_is_refused(registry):
    with pytest.raises(multiloop.BackendUnavailableError, match="lacks required capabilities.*o1"):
        registry.choose("select", require=["o1"], environ={})


def test_nothing_fits_error_explains_each_rejection(registry):
    with pytest.raises(multiloop.NoBackendAvailableError) as info:
        registry.choose(require=["o1", "regular_files"], environ={})
    msg = str(info.value)
    assert "epoll: lacks regular_files" in msg and "kqueue:" in msg and "select: lacks o1" in msg


def test_capability_typos_are_rejected(registry):
    with pytest.raises(ValueError, match="unknown capabilities.*'o2'"):
        registry.choose(require=["o2"], environ={})


def test_avoiding_an_unknown_backend_is_an_error(registry):
    with pytest.raises(multiloop.UnknownBackendError):
        registry.choose(avoid=["epol"], environ={})


def test_higher_priority_plugin_backend_wins_and_opt_in_ones_do_not(registry):
    registry.register_plugin(_Plugin(_backend("fast", priority=99), _backend("optin", priority=100, auto=False)),
                             name="fast-plugin")
    assert registry.choose(environ={}).name == "fast"
    assert registry.choose("optin", environ={}).name == "optin"
    info = {i.name: i for i in registry.infos()}
    assert info["fast"].origin == "runtime" and info["optin"].auto is False


def test_failing_probe_becomes_the_reason(registry):
    def probe():
        raise OSError("no such kernel feature")

    registry.register_plugin(_Plugin(multiloop.Backend(name="flaky", priority=99, capabilities=frozenset(),
                                                       probe=probe, factory=PollPoller)), name="flaky")
    info = {i.name: i for i in registry.infos()}
    assert not info["flaky"].available
    assert "OSError: no such kernel feature" in info["flaky"].reason
    assert registry.choose(environ={}).name == "epoll"


def test_a_plugin_whose_hook_raises_is_reported_and_others_still_work(registry):
    class Broken:
        @multiloop.hookimpl
        def multiloop_backends(self):
            raise RuntimeError("plugin bug")

    registry.register_plugin(Broken(), name="broken-one")
    assert [b.name for b in registry.broken] == ["broken-one"]
    assert "RuntimeError: plugin bug" in registry.broken[0].error
    assert registry.choose(environ={}).name == "epoll"


def test_a_plugin_returning_garbage_is_reported(registry):
    registry.register_plugin(_Plugin("not a backend"), name="garbage")
    assert "expected multiloop.Backend" in registry.broken[0].error


def test_duplicate_backend_names_keep_the_first_and_report_the_second(registry):
    registry.register_plugin(_Plugin(_backend("epoll", priority=1)), name="impostor")
    assert registry.get("epoll").origin == "built-in"
    assert any("already provided" in b.error for b in registry.broken)


def test_descriptor_validation():
    with pytest.raises(ValueError, match="unknown capabilities"):
        _backend("x", caps=["teleport"])
    with pytest.raises(ValueError, match="identifier"):
        _backend("has space")


def test_public_backends_lists_every_backend_with_reason_when_unavailable():
    rows = {r.name: r for r in multiloop.backends()}
    assert rows["epoll"].available and rows["epoll"].reason is None
    assert "o1" in rows["epoll"].capabilities
    if not hasattr(select, "kqueue"):
        assert not rows["kqueue"].available and rows["kqueue"].reason


def test_new_loop_with_require_and_avoid():
    lp = multiloop.new_loop(require=["fork_safe"], avoid=["poll"])
    try:
        assert lp.backend == "select"
    finally:
        lp.close()


def test_loop_factory_checks_the_name_early():
    with pytest.raises(multiloop.UnknownBackendError):
        multiloop.loop_factory("nonexistent")


def test_backend_must_be_a_string(registry):
    with pytest.raises(TypeError, match="backend name"):
        registry.choose(42, environ={})


# ------------------------------------------------------------------- the hook is called through pluggy
def test_hook_wrappers_see_and_can_change_every_plugins_backends(registry):
    seen = []

    class Wrapper:
        @multiloop.hookimpl(wrapper=True)
        def multiloop_backends(self):
            result = yield
            seen.append(sorted(d.name for descriptors in result for d in descriptors))
            # a wrapper may filter what a plugin offers
            return [[d for d in descriptors if d.name != "hidden"] for descriptors in result]

    registry.register_plugin(Wrapper(), name="wrapper")
    registry.register_plugin(_Plugin(_backend("visible"), _backend("hidden")), name="offers-two")
    assert ["hidden", "visible"] in seen
    assert "visible" in registry.names() and "hidden" not in registry.names()
    assert not registry.broken


def test_tryfirst_decides_which_plugin_keeps_a_contested_name(registry):
    class Late:
        @multiloop.hookimpl(trylast=True)
        def multiloop_backends(self):
            return [_backend("contested", priority=1)]

    class Early:
        @multiloop.hookimpl(tryfirst=True)
        def multiloop_backends(self):
            return [_backend("contested", priority=2)]

    registry.register_plugin(Early(), name="early")
    registry.register_plugin(Late(), name="late")
    assert registry.get("contested").priority == 2
    assert [b.name for b in registry.broken] == ["late"] and "already provided" in registry.broken[0].error


def test_a_failing_plugin_is_named_even_when_a_wrapper_is_involved(registry):
    class PassThrough:
        @multiloop.hookimpl(wrapper=True)
        def multiloop_backends(self):
            return (yield)

    class Broken:
        @multiloop.hookimpl
        def multiloop_backends(self):
            raise RuntimeError("plugin bug")

    registry.register_plugin(PassThrough(), name="pass-through")
    registry.register_plugin(Broken(), name="broken-one")
    assert [b.name for b in registry.broken] == ["broken-one"]
    assert registry.choose(environ={}).name == "epoll"


def test_a_failing_wrapper_is_blamed_not_the_plugin_it_wraps(registry):
    class BadWrapper:
        @multiloop.hookimpl(wrapper=True)
        def multiloop_backends(self):
            result = yield
            if any(d.name == "fragile" for descriptors in result for d in descriptors):
                raise ValueError("wrapper bug")
            return result

    registry.register_plugin(BadWrapper(), name="bad-wrapper")
    registry.register_plugin(_Plugin(_backend("fragile")), name="fragile-plugin")
    assert [b.name for b in registry.broken] == ["bad-wrapper"]
    assert "around 'fragile-plugin'" in registry.broken[0].error and "wrapper bug" in registry.broken[0].error
    assert "epoll" in registry.names()


def test_hook_calls_are_visible_to_pluggy_call_monitoring(registry):
    calls = []
    registry.pm.add_hookcall_monitoring(lambda name, impls, kwargs: calls.append(name), lambda *a: None)
    registry.register_plugin(_Plugin(_backend("monitored")), name="monitored")
    assert calls and set(calls) == {"multiloop_backends"}


def test_multiloop_plugins_environment_variable_loads_modules_as_plugins(tmp_path, monkeypatch):
    (tmp_path / "envplugin_for_test.py").write_text(
        "import multiloop\n"
        "from multiloop.pollers.poll import PollPoller\n"
        "@multiloop.hookimpl\n"
        "def multiloop_backends():\n"
        "    return [multiloop.Backend(name='fromenv', priority=1, capabilities=frozenset(),\n"
        "                              probe=lambda: None, factory=PollPoller)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry(environ={"MULTILOOP_PLUGINS": "envplugin_for_test, no_such_module_for_test"})
    assert reg.get("fromenv").origin == "envplugin_for_test ($MULTILOOP_PLUGINS)"
    assert [b.name for b in reg.broken] == ["no_such_module_for_test"]
    assert "import failed: ModuleNotFoundError" in reg.broken[0].error


def test_a_module_both_installed_and_named_in_multiloop_plugins_is_loaded_once(tmp_path, monkeypatch):
    (tmp_path / "twiceplugin_for_test.py").write_text(
        "import multiloop\n"
        "from multiloop.pollers.poll import PollPoller\n"
        "@multiloop.hookimpl\n"
        "def multiloop_backends():\n"
        "    return [multiloop.Backend(name='twice', priority=1, capabilities=frozenset(),\n"
        "                              probe=lambda: None, factory=PollPoller)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import twiceplugin_for_test

    reg = Registry(environ={})
    reg.register_plugin(twiceplugin_for_test, name="entrypoint:twice")  # as if installed
    reg._load_environ_plugins({"MULTILOOP_PLUGINS": "twiceplugin_for_test"})  # and named again
    reg._collect()
    assert "twice" in reg.names() and not reg.broken
