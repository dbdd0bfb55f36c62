"""Finds backends (built-in modules and entry-point plugins), probes them, and chooses one.

Selection follows libevent's ``event_base_new_with_config``: an explicit name wins; else ``MULTILOOP_BACKEND``;
else the highest-priority backend that is eligible for automatic choice, whose probe passes, that has every
required capability and is not avoided (``avoid=`` or ``MULTILOOP_AVOID``). Probing is lazy and cached per
process, so creating a loop costs one dictionary lookup after the first time.

A plugin that fails to import, whose hook raises, or that returns garbage is recorded as broken (name and
error) and skipped; it never breaks the other backends.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import pluggy

from . import hookspecs
from .backend import Backend, check_capability_names
from .errors import BackendUnavailableError, NoBackendAvailableError, UnknownBackendError

ENTRY_POINT_GROUP = "multiloop"
BUILTIN_MODULES = (
    "multiloop.pollers.epoll",
    "multiloop.pollers.kqueue",
    "multiloop.pollers.poll",
    "multiloop.pollers.select",
)
ENV_BACKEND = "MULTILOOP_BACKEND"
ENV_AVOID = "MULTILOOP_AVOID"


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


class Registry:
    """The loaded set of backends. One per process (see :func:`get_registry`); tests may build their own."""

    def __init__(self, *, entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.broken: list[BrokenPlugin] = []
        self._origins: dict[str, str] = {}
        self._backends: dict[str, Backend] = {}
        self._probe_cache: dict[str, str | None] = {}
        self._lock = threading.Lock()
        for modname in BUILTIN_MODULES:
            module = importlib.import_module(modname)
            self.pm.register(module, name=modname)
            self._origins[modname] = "built-in"
        if entry_points:
            self._load_entry_points()
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

    def register_plugin(self, plugin: object, name: str, origin: str = "runtime") -> None:
        """Register a plugin object at run time (tests, embedding applications)."""
        self.pm.register(plugin, name=name)
        self._origins[name] = origin
        self._collect()

    def _collect(self) -> None:
        backends: dict[str, Backend] = {}
        broken = [b for b in self.broken if b.error.startswith("import failed")]
        # Hook implementations are called one by one so that one plugin's failure is attributed to it alone.
        # In registration order: built-ins first, so a plugin cannot shadow a built-in backend name.
        for impl in self.pm.hook.multiloop_backends.get_hookimpls():
            origin = self._origins.get(impl.plugin_name, impl.plugin_name)
            short = impl.plugin_name.removeprefix("entrypoint:")
            try:
                result: Any = impl.function()
                descriptors: list[Any] = list(result or ())
                for d in descriptors:
                    if not isinstance(d, Backend):
                        raise TypeError(f"hook returned {type(d).__name__}, expected multiloop.Backend")
            except Exception as exc:  # noqa: BLE001
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

    def get(self, name: str) -> Backend:
        try:
            return self._backends[name]
        except KeyError:
            raise UnknownBackendError(
                f"unknown multiloop backend {name!r}; available here: {', '.join(self.available_names()) or 'none'}"
                f" (known: {', '.join(self.names())})", backend=name) from None

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
               avoid: Iterable[str] = (), environ: dict[str, str] | None = None) -> Backend:
        """Apply the selection rules and return the chosen descriptor, or raise saying why none fits."""
        env = os.environ if environ is None else environ
        required = check_capability_names(require, "require=")
        avoided = set(_split_names(avoid)) | set(_split_names(env.get(ENV_AVOID, "")))
        for avoided_name in avoided:
            if avoided_name not in self._backends:
                raise UnknownBackendError(f"avoid= names unknown backend {avoided_name!r}; known: "
                                          f"{', '.join(self.names())}", backend=avoided_name)
        name = backend if backend is not None else (env.get(ENV_BACKEND) or None)
        if name is not None:
            if not isinstance(name, str):
                raise TypeError(f"backend must be a backend name (str) or None, not {type(name).__name__}")
            source = "backend=" if backend is not None else f"${ENV_BACKEND}"
            chosen = self.get(name)
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
        rejected = []
        for candidate in self.names():
            b = self._backends[candidate]
            if not b.auto:
                rejected.append(f"{candidate}: only used when named")
            elif candidate in avoided:
                rejected.append(f"{candidate}: avoided")
            elif (why := self.probe(candidate)) is not None:
                rejected.append(f"{candidate}: {why}")
            elif missing := required - b.capabilities:
                rejected.append(f"{candidate}: lacks {', '.join(sorted(missing))}")
            else:
                return b
        raise NoBackendAvailableError("no multiloop backend fits: " + "; ".join(rejected))


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
