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

import asyncio
from collections.abc import Iterable
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


@hookspec
def multiloop_instruments(loop: asyncio.AbstractEventLoop) -> Iterable[object] | None:
    """Return the instruments to attach to ``loop``, a new multiloop loop (or None / an empty list).

    Called once for every loop ``multiloop.new_loop()`` makes (so also under ``multiloop.run``, ``loop_factory``
    and ``python -m multiloop run``), before the loop first runs. An instrument is any object with some of the
    methods of :class:`multiloop.Instrument` (``before_io_wait``, ``after_io_wait``, ``before_callback``,
    ``after_callback``, ``slow_callback``, ``task_spawned``, ``task_exited``); it is attached with
    ``loop.add_instrument``. This is how a tracing or metrics exporter attaches itself to every loop of a
    program once it is installed::

        # mypackage/multiloop_plugin.py, the entry point "multiloop" of your distribution
        @multiloop.hookimpl
        def multiloop_instruments(loop):
            return [MyExporter(loop)]

    A plugin whose hook raises, or returns something that is not an iterable of instruments, is reported
    through the loop's exception handler (naming the plugin); the loop is still made, with the other plugins'
    instruments.
    """
