"""The plugin hooks. This module is the manual for backend authors.

multiloop uses pluggy with project name ``"multiloop"``. A plugin is any module or object with functions
marked ``@multiloop.hookimpl``; third-party plugins are found through the entry-point group ``multiloop``::

    # pyproject.toml of your distribution
    [project.entry-points.multiloop]
    mybackend = "mypackage.multiloop_plugin"

    # mypackage/multiloop_plugin.py
    import multiloop

    @multiloop.hookimpl
    def multiloop_backends():
        return [multiloop.Backend(name="mine", priority=10, capabilities=frozenset({"o1"}),
                                  probe=_probe, factory=MyPoller)]

The built-in backends (select, poll, epoll, kqueue) are registered through exactly this hook, so a
third-party backend is listed, probed and selected exactly like them.
"""

from __future__ import annotations

import pluggy

PROJECT = "multiloop"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def multiloop_backends() -> list:  # type: ignore[type-arg,empty-body]
    """Return a list of :class:`multiloop.Backend` descriptors this plugin provides.

    Called once per registry load. Must be cheap and must not probe the platform (that is what each
    descriptor's ``probe`` is for, called lazily). Raising here marks the plugin as broken: it is reported by
    ``multiloop.backends()`` and ``python -m multiloop info`` and never breaks the other backends.
    """
