"""Finds backends (built-in modules and entry-point plugins), probes them, and chooses one.

Selection follows libevent's ``event_base_new_with_config``: an explicit name wins; else ``MULTILOOP_BACKEND``;
else the highest-priority backend that is eligible for automatic choice, whose probe passes, that has every
required capability and is not avoided (``avoid=`` or ``MULTILOOP_AVOID``). Probing is lazy and cached per
process, so creating a loop costs one dictionary lookup after the first time.

Every error says where a name came from (``backend=``, ``$MULTILOOP_BACKEND``, ``avoid=``, ``$MULTILOOP_AVOID``)
and, for a name that is not registered, why: its plugin failed to load (the error), or it belongs to a
distribution that is not installed (the install command, from ``PLUGIN_HINTS``). Avoiding a backend that is not
installed is no error: ``MULTILOOP_AVOID=trio`` must not break programs on machines without the trio plugin.

A plugin that fails to import, whose hook raises, or that returns garbage is recorded as broken (name and
error) and skipped; it never breaks the other backends.

Plugins come from three places: the built-in modules, entry points in group ``multiloop`` (installed
distributions), and ``MULTILOOP_PLUGINS`` (comma-separated importable module names, registered like entry
points: for checking a backend before it is packaged, ``python -m multiloop check-backend --plugin``).

How the hook is called. pluggy calls every implementation of a hook in one go and stops at the first
exception, which then cannot be told apart from a failure of any other plugin; so a single
``pm.hook.multiloop_backends()`` would let one broken plugin hide every backend. Calling the implementation
functions directly (as this module once did) attributes failures but bypasses pluggy: hook wrappers,
``tryfirst``/``trylast`` ordering, tracing and call monitoring. So each plugin is called through
``pm.subset_hook_caller`` -- ``pm.hook.multiloop_backends`` minus every *other* non-wrapper implementation:
pluggy's machinery runs as usual (wrappers wrap each call; the calls are made in pluggy's own order), and a
failure belongs to exactly one plugin (or to the wrapper whose frame raised it, found in the traceback).
Name conflicts are resolved in that order, except that built-in backend names cannot be taken by a plugin.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .backend import Backend, check_capability_names
from .errors import BackendUnavailableError, NoBackendAvailableError, UnknownBackendError

if TYPE_CHECKING:
    from pluggy import HookImpl

ENTRY_POINT_GROUP = "multiloop"
BUILTIN_MODULES = (
    "multiloop.pollers.epoll",
    "multiloop.pollers.kqueue",
    "multiloop.pollers.poll",
    "multiloop.pollers.select",
)
ENV_BACKEND = "MULTILOOP_BACKEND"
ENV_AVOID = "MULTILOOP_AVOID"
ENV_PLUGINS = "MULTILOOP_PLUGINS"
BUILTIN = "built-in"


@dataclass(frozen=True)
class BackendInfo:
    """One row of ``multiloop.backends()``: what a backend is and whether it can run here."""

    name: str
    available: bool
    reason: str | None
    priority: int
    capabilities: frozenset[str]
    origin: str
    auto: bool
    description: str


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded or whose hook failed."""

    name: str
    origin: str
    error: str


#: Backends that come with a separately installed distribution: the install hint for "backend not found".
PLUGIN_HINTS = {
    "trio": "multiloop-asyncio-trio",
}


class Registry:
    """The loaded set of backends. One per process (see :func:`get_registry`); tests may build their own."""

    def __init__(self, *, entry_points: bool = True, environ: Mapping[str, str] | None = None) -> None:
        """``entry_points=False``: only the built-ins (and plugins registered later with
        :meth:`register_plugin`); neither entry points nor ``MULTILOOP_PLUGINS`` are loaded."""
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.broken: list[BrokenPlugin] = []
        self._origins: dict[str, str] = {}
        self._backends: dict[str, Backend] = {}
        self._probe_cache: dict[str, str | None] = {}
        self._warned_avoid: set[str] = set()
        self._lock = threading.Lock()
        for modname in BUILTIN_MODULES:
            module = importlib.import_module(modname)
            self.pm.register(module, name=modname)
            self._origins[modname] = BUILTIN
        if entry_points:
            self._load_entry_points()
            self._load_environ_plugins(os.environ if environ is None else environ)
        self._collect()

    # -- loading -------------------------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            origin = f"{dist.name} {dist.version}" if dist is not None else f"entry point {ep.value}"
            plugin_name = f"entrypoint:{ep.name}"
            if self.pm.has_plugin(plugin_name):  # the same distribution seen twice on sys.path
                continue
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=plugin_name)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
                self.broken.append(BrokenPlugin(ep.name, origin, f"import failed: {type(exc).__name__}: {exc}"))
                continue
            self._origins[plugin_name] = origin

    def _load_environ_plugins(self, environ: Mapping[str, str]) -> None:
        for modname in _split_names(environ.get(ENV_PLUGINS, "")):
            plugin_name = f"env:{modname}"
            if self.pm.has_plugin(plugin_name):
                continue
            origin = f"{modname} (${ENV_PLUGINS})"
            try:
                module = importlib.import_module(modname)
                if self.pm.is_registered(module):
                    continue  # also installed as an entry point: loaded already
                self.pm.register(module, name=plugin_name)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
                self.broken.append(BrokenPlugin(modname, origin, f"import failed: {type(exc).__name__}: {exc}"))
                continue
            self._origins[plugin_name] = origin

    def register_plugin(self, plugin: object, name: str, origin: str = "runtime") -> None:
        """Register a plugin object at run time (tests, embedding applications)."""
        self.pm.register(plugin, name=name)
        self._origins[name] = origin
        self._collect()

    def _short(self, plugin_name: str) -> str:
        return plugin_name.removeprefix("entrypoint:").removeprefix("env:")

    def _collect(self) -> None:
        backends: dict[str, Backend] = {}
        broken = [b for b in self.broken if b.error.startswith("import failed")]
        impls = self.pm.hook.multiloop_backends.get_hookimpls()
        wrappers = [i for i in impls if i.hookwrapper or i.wrapper]
        # pluggy calls the last in this list first (tryfirst/trylast already applied): that is our order,
        # except that built-ins come first so that no plugin can take a built-in backend's name.
        plain = [i for i in reversed(impls) if not (i.hookwrapper or i.wrapper)]
        plain.sort(key=lambda i: self._origins.get(i.plugin_name) != BUILTIN)
        for impl in plain:
            origin = self._origins.get(impl.plugin_name, impl.plugin_name)
            short = self._short(impl.plugin_name)
            others = [i.plugin for i in plain if i.plugin is not impl.plugin]
            try:
                results: Any = self.pm.subset_hook_caller("multiloop_backends", remove_plugins=others)()
                descriptors: list[Any] = [d for result in results for d in (result or ())]
                for d in descriptors:
                    if not isinstance(d, Backend):
                        raise TypeError(f"hook returned {type(d).__name__}, expected multiloop.Backend")
            except Exception as exc:  # noqa: BLE001
                culprit = _culprit(exc, impl, wrappers)
                if culprit is not impl:
                    name = self._short(culprit.plugin_name)
                    broken.append(BrokenPlugin(name, self._origins.get(culprit.plugin_name, name),
                                               f"hook wrapper failed around {short!r}: "
                                               f"{type(exc).__name__}: {exc}"))
                    continue
                broken.append(BrokenPlugin(short, origin, f"hook failed: {type(exc).__name__}: {exc}"))
                continue
            for d in descriptors:
                if d.name in backends:
                    broken.append(BrokenPlugin(short, origin, f"backend name {d.name!r} already provided "
                                                              f"by {backends[d.name].origin}; ignored"))
                    continue
                backends[d.name] = replace(d, origin=origin)
        self.broken = broken
        self._backends = backends
        self._probe_cache.clear()

    # -- querying ------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._backends, key=lambda n: (-self._backends[n].priority, n))

    def get(self, name: str, *, source: str = "backend=") -> Backend:
        """The descriptor of backend ``name``; UnknownBackendError saying why not (``source``: where the name
        came from, for the message)."""
        try:
            return self._backends[name]
        except KeyError:
            raise UnknownBackendError(self._unknown_message(name, source), backend=name) from None

    def missing_reason(self, name: str) -> str | None:
        """Why backend ``name`` is not registered, when that is known: its plugin failed to load (the error),
        or it comes with a distribution that is not installed (how to install it). None for a name nobody
        provides."""
        for broken in self.broken:
            if broken.name == name:
                return f"its plugin ({broken.origin}) failed to load: {broken.error}"
        if name in PLUGIN_HINTS:
            dist = PLUGIN_HINTS[name]
            return f"it comes with the {dist} distribution, which is not installed (pip install {dist})"
        return None

    def _unknown_message(self, name: str, source: str) -> str:
        available = f"available here: {', '.join(self.available_names()) or 'none'}"
        why = self.missing_reason(name)
        if why is not None:
            return f"multiloop backend {name!r} ({source}) cannot be used: {why}; {available}"
        return f"unknown multiloop backend {name!r} ({source}); {available} (known: {', '.join(self.names())})"

    def probe(self, name: str) -> str | None:
        """None if backend ``name`` can run here, else why not. Cached per process."""
        with self._lock:
            if name in self._probe_cache:
                return self._probe_cache[name]
        backend = self.get(name)
        try:
            reason = backend.probe()
            if reason is not None and not isinstance(reason, str):
                reason = f"probe returned {reason!r} instead of None or a reason"
        except Exception as exc:  # noqa: BLE001 - the exception is the reason
            reason = f"probe raised {type(exc).__name__}: {exc}"
        with self._lock:
            self._probe_cache[name] = reason
        return reason

    def available_names(self) -> list[str]:
        return [n for n in self.names() if self.probe(n) is None]

    def infos(self) -> list[BackendInfo]:
        rows = []
        for name in self.names():
            b = self._backends[name]
            reason = self.probe(name)
            rows.append(BackendInfo(name=name, available=reason is None, reason=reason, priority=b.priority,
                                    capabilities=b.capabilities, origin=b.origin, auto=b.auto,
                                    description=b.description))
        return rows

    def choose(self, backend: str | None = None, *, require: Iterable[str] = (),
               avoid: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> Backend:
        """Apply the selection rules and return the chosen descriptor, or raise saying why none fits.

        ``avoid=`` and ``$MULTILOOP_AVOID`` only concern the automatic choice: a named backend ignores them.
        A name in them that no plugin provides cannot be picked anyway: from ``$MULTILOOP_AVOID`` it is ignored
        with a RuntimeWarning (an environment variable must not break every program); from ``avoid=`` it is an
        UnknownBackendError (a typo in code), except for a backend whose plugin is not installed or failed to
        load, which a program may well avoid without knowing whether it is installed.
        """
        env = os.environ if environ is None else environ
        required = check_capability_names(require, "require=")
        name = backend if backend is not None else (env.get(ENV_BACKEND) or None)
        if name is not None:
            if not isinstance(name, str):
                raise TypeError(f"backend must be a backend name (str) or None, not {type(name).__name__}")
            source = "backend=" if backend is not None else f"${ENV_BACKEND}"
            chosen = self.get(name, source=source)
            reason = self.probe(name)
            if reason is not None:
                raise BackendUnavailableError(
                    f"multiloop backend {name!r} ({source}) is not available here: {reason}; available: "
                    f"{', '.join(self.available_names()) or 'none'}", backend=name)
            missing = required - chosen.capabilities
            if missing:
                raise BackendUnavailableError(
                    f"multiloop backend {name!r} ({source}) lacks required capabilities {sorted(missing)}; it has "
                    f"{sorted(chosen.capabilities)}", backend=name)
            return chosen
        avoided: dict[str, str] = {}  # name -> where the wish came from
        for avoided_name in _split_names(env.get(ENV_AVOID, "")):
            if self._check_avoided(avoided_name, f"${ENV_AVOID}"):
                avoided[avoided_name] = f"${ENV_AVOID}"
        for avoided_name in _split_names(avoid):
            if self._check_avoided(avoided_name, "avoid="):
                avoided[avoided_name] = "avoid="
        rejected = []
        for candidate in self.names():
            b = self._backends[candidate]
            if not b.auto:
                rejected.append(f"{candidate}: only used when named")
            elif candidate in avoided:
                rejected.append(f"{candidate}: avoided ({avoided[candidate]})")
            elif (why := self.probe(candidate)) is not None:
                rejected.append(f"{candidate}: {why}")
            elif missing := required - b.capabilities:
                rejected.append(f"{candidate}: lacks {', '.join(sorted(missing))}")
            else:
                return b
        raise NoBackendAvailableError("no multiloop backend fits: " + "; ".join(rejected))

    def _check_avoided(self, name: str, source: str) -> bool:
        """True if ``name`` is a registered backend; else warn (environment) or raise (code) for a name nobody
        provides, and accept silently one that is merely not installed or broken."""
        if name in self._backends:
            return True
        if self.missing_reason(name) is not None:
            return False
        message = (f"{source} names unknown multiloop backend {name!r}; known: {', '.join(self.names())}")
        if source == "avoid=":
            raise UnknownBackendError(message, backend=name)
        with self._lock:
            if name in self._warned_avoid:
                return False
            self._warned_avoid.add(name)
        import warnings  # the rare path: only a misspelt $MULTILOOP_AVOID gets here

        warnings.warn(f"{message} (ignored)", RuntimeWarning, stacklevel=4)
        return False


def _culprit(exc: BaseException, impl: HookImpl, wrappers: list[HookImpl]) -> HookImpl:
    """Which of ``impl`` and the hook ``wrappers`` raised ``exc``: the innermost of their frames in the
    traceback (a wrapper that re-raises the implementation's exception does not take the blame)."""
    codes = {getattr(h.function, "__code__", None): h for h in (impl, *wrappers)}
    found = impl
    tb = exc.__traceback__
    while tb is not None:
        h = codes.get(tb.tb_frame.f_code)
        if h is not None:
            found = h
        tb = tb.tb_next
    return found


def _split_names(value: Iterable[str] | str) -> list[str]:
    if isinstance(value, str):
        return [n for n in value.replace(",", " ").split() if n]
    return list(value)


_registry: Registry | None = None
_registry_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = Registry()
    return _registry


def reload_registry() -> Registry:
    """Forget the loaded plugins and probe results and load them again (after installing a plugin)."""
    global _registry
    with _registry_lock:
        importlib.invalidate_caches()
        _registry = Registry()
    return _registry
