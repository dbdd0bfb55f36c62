"""The typed seam through which a backend's compiled wait hands readiness to the core without Python objects.

Facts that shape it:
- A backend's ``poll()`` returns a list of ``(fd, events)`` tuples: per wait a list, per event a tuple (and
  ints above 256), all freed again a moment later by the core, plus a Python-level method call. Measured on
  an fd ping-pong (callgrind, 3.11, compiled), that is about 600 of the ~6,200 instructions of a pass that
  wakes one reader, where libuv hands each event to its watcher in C.
- The core must not know any backend, and a backend must not reach into the core. So both sides meet here:
  a backend's wait may be a :class:`NativeWait`, which delivers each event by calling
  :meth:`ReadinessSink._on_ready` (a C method when compiled: one indirect call per event), and the core is a
  :class:`ReadinessSink`. Nothing else crosses.
- Only compiled builds use it (the core's pure-Python pass takes the list, which is what fast Python is);
  ``poll()`` stays every poller's contract, and the core still uses it whenever it needs the list (instruments
  attached, the periodic audit of reported fds, a backend with something pending). A backend opts in by setting
  its poller's ``native_wait`` (see :class:`multiloop.backend.Poller`).
"""

from __future__ import annotations

try:
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # running as plain Python without Cython installed
    from . import _cython_shim as cython  # type: ignore[no-redef, unused-ignore]


class ReadinessSink:
    """What receives the events of a :class:`NativeWait`: the core."""

    def _on_ready(self, fd: int, events: int) -> int:
        """``fd`` is ready for ``events`` (the backend's bits, as ``poll()`` would report them). Returns 0."""
        raise NotImplementedError


class NativeWait:
    """A backend's wait that delivers events to a :class:`ReadinessSink` instead of returning them.

    ``active`` is False while the backend needs its ``poll()`` to run instead (it has events of its own to
    report first): the core checks it before every wait."""

    active: bool

    def __init__(self) -> None:
        self.active = True

    def wait_into(self, sink: ReadinessSink, timeout: float) -> int:
        """Wait at most ``timeout`` seconds (negative: no limit), call ``sink._on_ready`` for each ready fd, and
        return how many. Interrupted by a signal: run the handlers and return 0, as ``poll()`` does."""
        raise NotImplementedError


if not cython.compiled:
    # Plain Python: no instance dict, so the core's pure-Python state class (which derives from it) keeps its
    # slots-only layout (see core._CoreState).
    ReadinessSink = type("ReadinessSink", (), {  # type: ignore[misc, assignment]  # noqa: F811
        **{k: v for k, v in vars(ReadinessSink).items() if k not in ("__dict__", "__weakref__")},
        "__slots__": (),
    })
