"""Which implementation of the hot path this process runs: the compiled extension modules or their ``.py`` sources.

Facts that shape it:
- The extensions are compiled by Cython (pure-Python mode) from the very ``.py`` files listed in
  :data:`EXTENSION_MODULES`, under the same module names, and they are installed beside those files. Python's
  import system tries extension modules before source files in a directory, so an installed extension is used
  unless something says otherwise.
- The compiled modules share C-level types with each other (``cimport`` through their ``.pxd`` files): a
  compiled ``core`` next to a pure-Python ``fdtable`` would not even import. The choice is therefore all or
  nothing, made once per process, before any of them is imported.
- An in-place build (an editable install) leaves extensions beside sources that keep changing. An extension
  compiled from an older version of its source must never run: ``setup.py`` records the SHA-256 of each
  source it compiled (``_extensions<tag>.json``, one per interpreter tag), and a mismatch selects the sources.

Design: importing this module (``multiloop/__init__`` does it first) decides. The sources are chosen when
``MULTILOOP_NO_EXTENSIONS`` is set to anything but ``""``/``0``, when this interpreter has no complete build,
or when a build is stale; if extensions are present anyway, a meta-path finder then loads these module names
from their ``.py`` files. :data:`ACTIVE` and :data:`REASON` say what was chosen and why; :func:`status` checks
what was actually loaded. ``python -m multiloop info`` shows both.

Free threading: an extension declares it runs without the GIL (Cython's ``freethreading_compatible``
directive, which ``setup.py`` sets for the modules in :data:`FREE_THREADING_COMPATIBLE`) only where that is true;
``tests/test_compiled.py`` checks that importing the package leaves the GIL disabled on a free-threaded
interpreter, and the thread-safety tests run against the compiled build there.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

#: The modules built as extensions (``setup.py`` reads this tuple without importing the package).
#:
#: Only those that are faster compiled. Compiled code pays a full type lookup plus a dictionary or descriptor
#: access for every attribute of a *Python-class* instance, which CPython 3.11+'s specialising interpreter does
#: in a few instructions; a module gains only where its hot state is in C fields. The core (``_CoreState``) and
#: the fd table (extension types) are. The transports cannot be (a transport must subclass
#: ``asyncio.BaseTransport``, whose ``__slots__`` layout excludes an extension-type base), so the socket
#: transport's per-event path is a separate extension type, ``multiloop.net.streamengine.StreamEngine``: the
#: transport stays a Python class (isinstance, the public API, every rare path) and the engine, with its state in
#: C fields, is the fd table's reader callback and the transport's ``write``. Measured, 1 KiB echo, instructions
#: per request (callgrind, 3.11; an earlier harness): transports compiled as Python classes 10,358 (protocol) /
#: 34,004 (streams), core and fd table only 9,229 / 32,403, nothing compiled 14,008 / 41,955, stock asyncio
#: 15,303 / 44,332. With the engine (``benchmarks/echo_instructions.py``, ``docs/performance.md`` "Stream engine",
#: 3.11): TCP Protocol 5,057, streams 24,646, Unix 4,981, against main's 11,710 / 31,270 / 11,773 in the same
#: harness (uvloop 4,568 / 23,836 / 4,143, stock asyncio 22,905 / 56,000 / 22,720).
#: ``multiloop.pollers.epollwait`` is the epoll backend's wait: ``epoll_wait(2)`` on a stack buffer instead of
#: ``select.epoll.poll``'s per-call malloc of a 12 KiB array (fd ping-pong: 14,122 -> 12,997 instructions per
#: round trip, 3.11; uvloop 10,049). A backend's module, not the core's: the core never imports it.
#: ``multiloop.readiness`` declares the seam through which that wait hands each event to the core's C method
#: instead of returning a list of tuples (fd ping-pong 12,467 -> 10,530 instructions per round trip; 1 KiB TCP
#: echo 4,810 -> 3,928 per request, uvloop 4,464; 3.11).
#: ``multiloop.net.sockcalls``: the ``sock_*`` coroutines' first try of recv(2) with "would block" returned, not
#: raised (BlockingIOError costs ~4,000 instructions to build and catch; see the module).
#: ``multiloop.wakeup``: the wake-up fd written and drained by C syscalls that keep the GIL (4 threads posting
#: call_soon_threadsafe: a thread that releases the GIL for os.eventfd_write queues behind the others to get it
#: back; see the module).
EXTENSION_MODULES: tuple[str, ...] = (
    "multiloop.readiness",
    "multiloop.pollers.epollwait",
    "multiloop.timerheap",
    "multiloop.fdtable",
    "multiloop.core",
    "multiloop.net.streamengine",
    "multiloop.net.sockcalls",
    "multiloop.wakeup",
)

#: The extensions that are correct without the GIL. Why, for each:
#:
#: - ``multiloop.pollers.epollwait``: an ``EpollWait`` belongs to one poller, used by its loop's thread only;
#:   the event buffer is on the waiting thread's stack; no module state.
#: - ``multiloop.timerheap``: each heap belongs to one loop and is used by its thread only (``call_at`` and
#:   ``call_later`` are not thread-safe in asyncio either); the module has no shared state.
#: - ``multiloop.fdtable``: used by the loop's own thread only (asyncio's rule for everything but
#:   ``call_soon_threadsafe``); its C fields are never touched from another thread.
#: - ``multiloop.core``: other threads call ``call_soon_threadsafe`` (and ``get_debug``, from a handle's
#:   ``__init__``). Those read only C fields that are either never rebound after ``__init__`` (``_ready_append``,
#:   ``_waker``: object fields, so no reference is taken on an object being replaced) or plain flags whose
#:   stale value is harmless (``_closed``, ``_debug``), and ``_may_block``, the one hand-off that matters: the
#:   producer appends to the ready deque (locked by the deque itself) and then reads the flag, the loop sets the
#:   flag and then looks at the deque, each side with a sequentially consistent fence between the two (``ml_fence``
#:   in ``_fasthandles.pxd``), so either the loop sees the callback or the producer sees the flag and wakes it.
#:   Handles: the loop reads their slots through ``PyMember_GetOne`` on free-threaded builds (a safe reference even
#:   if another thread replaces the slot); handles another thread may cancel (``call_soon_threadsafe``'s) are a
#:   different class whose own locked ``_run`` is used.
#: - ``multiloop.net.streamengine``: an engine belongs to one transport, which (as in asyncio) is used from the
#:   loop's thread only; its C fields are never touched from another thread. The socket's fd is read from the
#:   socket object with an atomic load there, so a socket closed by another thread (unsupported) fails with
#:   EBADF as socket.send would, never with a torn read. The module's only process-wide state is the socket
#:   type recorded once at import.
#: - ``multiloop.readiness``: two abstract extension types, no state at all.
#: - ``multiloop.net.sockcalls``: no state at all; each call asks the socket for its fd and makes one recv(2), as
#:   socket.recv does (a socket closed by another thread meanwhile fails with EBADF, as it would there).
#: - ``multiloop.wakeup``: without a GIL, ``wake`` takes the lock that orders it against ``close`` (as the Python
#:   code does everywhere); the pending flag is the same hint as in the Python code (see the module docstring).
FREE_THREADING_COMPATIBLE: tuple[str, ...] = (
    "multiloop.readiness",
    "multiloop.pollers.epollwait",
    "multiloop.timerheap",
    "multiloop.fdtable",
    "multiloop.core",
    "multiloop.net.streamengine",
    "multiloop.net.sockcalls",
    "multiloop.wakeup",
)

#: The environment variable that selects the ``.py`` sources (at build time it skips building them).
ENV = "MULTILOOP_NO_EXTENSIONS"
_PACKAGE_DIR = Path(__file__).resolve().parent


def _env_says_pure() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no")


def _source(name: str) -> Path:
    return _PACKAGE_DIR.joinpath(*name.split(".")[1:]).with_suffix(".py")


def _extension_tag() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def _stamp_name() -> str:
    return f"_extensions{_extension_tag().rsplit('.', 1)[0]}.json"


def _check_build() -> tuple[bool, str, dict[str, Any]]:
    """(usable, why, this interpreter's stamp) for the extensions beside the sources."""
    try:
        built = json.loads((_PACKAGE_DIR / _stamp_name()).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False, (f"pure Python: no compiled modules were built for this interpreter "
                       f"({_extension_tag().strip('.')}) in this installation"), {}
    except (OSError, ValueError) as exc:
        return False, f"pure Python: cannot read {_stamp_name()} ({exc})", {}
    for name in EXTENSION_MODULES:
        entry = built.get("modules", {}).get(name)
        if entry is None:
            return False, f"pure Python: {name} was not compiled (the build is partial)", built
        if not (_source(name).parent / entry["file"]).exists():
            return False, f"pure Python: {entry['file']} is missing", built
        try:
            digest = hashlib.sha256(_source(name).read_bytes()).hexdigest()
        except OSError as exc:
            return False, f"pure Python: cannot read {_source(name)} ({exc})", built
        if digest != entry["source_sha256"]:
            return False, (f"pure Python: the compiled {name} is stale ({_source(name).name} changed since it "
                           f"was compiled; reinstall or rebuild to compile it again)"), built
    return True, f"compiled (Cython {built.get('cython', '?')})", built


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Loads the hot-path modules from their ``.py`` files even when extensions sit beside them."""

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> Any:
        if fullname not in EXTENSION_MODULES:
            return None
        # Their sources with Cython's compile-time constants folded (multiloop/_pure_loader.py says why).
        from ._pure_loader import FoldingLoader

        path = str(_source(fullname))
        return importlib.util.spec_from_file_location(fullname, path, loader=FoldingLoader(fullname, path))


def _select() -> tuple[bool, str]:
    if _env_says_pure():
        active, why = False, f"pure Python: {ENV} is set"
    else:
        active, why, _ = _check_build()
    if not active and not any(isinstance(f, _SourcesFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst())
    return active, why


#: True when the compiled extension modules are in use, False when their ``.py`` sources are.
ACTIVE, REASON = _select()
#: "compiled" or "pure".
MODE = "compiled" if ACTIVE else "pure"


def status() -> dict[str, Any]:
    """What was chosen and why, and the file each hot-path module was loaded from (imports them)."""
    loaded = {}
    for name in EXTENSION_MODULES:
        module = sys.modules.get(name) or importlib.import_module(name)
        loaded[name] = getattr(module, "__file__", None)
    extension = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    compiled = [n for n, f in loaded.items() if f is not None and f.endswith(extension)]
    return {"mode": MODE, "active": ACTIVE, "reason": REASON, "env": ENV, "modules": loaded,
            "compiled_modules": len(compiled), "consistent": len(compiled) == (len(loaded) if ACTIVE else 0)}
