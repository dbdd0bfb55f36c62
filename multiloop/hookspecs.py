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

What ``MyPoller`` must do is the :class:`multiloop.Poller` contract (its docstring is the specification:
abstract ``register``/``modify``/``unregister``/``poll``/``close``, the READ/WRITE/ERROR/INVALID flags, and
the optional ``make_waker``, ``drives_loop``/``drive``, ``discard_stale``, ``statistics``). Kernel errors
become multiloop's with :func:`multiloop.translate_oserror`. Then check it::

    python -m multiloop check-backend mine            # behavioural checks + CPython's test_asyncio
    python -m multiloop check-backend mine --plugin mypackage.multiloop_plugin   # before installing it

``examples/backend-plugin`` in multiloop's repository is a complete backend distribution to start from.
The registry calls this hook through pluggy (``pm.subset_hook_caller``, one plugin at a time), so hook
wrappers and ``tryfirst``/``trylast`` work as usual; ``MULTILOOP_PLUGINS=module,...`` registers modules that
are not installed as entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .backend import Backend

PROJECT = "multiloop"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def multiloop_backends() -> list[Backend]:  # type: ignore[empty-body]
    """Return a list of :class:`multiloop.Backend` descriptors this plugin provides.

    Called once per registry load. Must be cheap and must not probe the platform (that is what each
    descriptor's ``probe`` is for, called lazily). Raising here marks the plugin as broken: it is reported by
    ``multiloop.backends()`` and ``python -m multiloop info`` and never breaks the other backends.
    """
