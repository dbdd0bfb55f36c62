"""``python -m multiloop run [--backend NAME] [--stats] script.py [args...] | -m module [args...]``: run a program
as ``python`` would, with every loop its ``asyncio.run`` / ``asyncio.Runner`` / ``asyncio.new_event_loop``
creates being a multiloop loop.

What "as python would" means here (CPython's ``Modules/main.c`` and ``runpy``):

- ``sys.argv`` is ``[script, *args]``, or ``[module file, *args]`` for ``-m``; the program runs as ``__main__``.
- ``sys.path[0]`` is the script's directory (symlinks resolved), the directory or zip itself when the target is
  one, or the current directory for ``-m``; it replaces the entry this launcher was given. With ``-P`` /
  ``PYTHONSAFEPATH`` nothing is prepended.
- The exit status: ``SystemExit`` is passed through (``sys.exit(n)``, ``sys.exit("message")``); an uncaught
  exception prints its traceback through ``sys.excepthook`` and exits 1; ``KeyboardInterrupt`` prints its
  traceback and exits 130, what a shell reports for a Ctrl-C'd program.
- A missing script is ``can't open file`` and status 2; a missing module is ``No module named`` and status 1.

Tracebacks show the program, not the launcher: the frames of ``runpy`` and of multiloop's CLI before the
program's first frame are dropped, as are multiloop frames the exception merely passed through (the loop's
``run_until_complete`` between ``asyncio.run`` and the program's coroutine). Frames where an exception was
raised inside multiloop itself are kept.

Bad input (unknown option, unknown or unavailable backend, missing script or module) is one line on stderr.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

NAME = "run"
HELP = "run a script or module (-m) like python does, on multiloop loops"
RAW = True  # options after the target belong to the program

USAGE = "usage: python -m multiloop run [--backend NAME] [--stats] (script.py | -m module) [args ...]"
PROG = "python -m multiloop run"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UsageError(Exception):
    """Bad command line or target: one line on stderr, and this exit status."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Options:
    backend: str | None = None
    stats: bool = False
    script: str | None = None
    module: str | None = None
    args: list[str] = field(default_factory=list)


def parse(argv: list[str]) -> Options:
    """Launcher options come first; the first non-option (or ``-m NAME``) ends them."""
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            print(USAGE)
            print("\nRun a Python script, or a module with -m, as python does, with every event loop its asyncio.run,"
                  "\nasyncio.Runner and asyncio.new_event_loop create being a multiloop loop.")
            print("\n  --backend NAME  the multiloop backend (default: $MULTILOOP_BACKEND, else the automatic choice)"
                  "\n  --stats         record timings and print each loop's statistics (loop.stats()) to stderr at exit"
                  "\n  -m module       run a module as a script, like python -m")
            raise SystemExit(0)
        if arg == "--stats":
            opts.stats = True
        elif arg == "--backend" or arg.startswith("--backend="):
            if "=" in arg:
                opts.backend = arg.split("=", 1)[1]
            elif i + 1 < len(argv):
                i += 1
                opts.backend = argv[i]
            else:
                raise UsageError("--backend needs a backend name")
            if not opts.backend:
                raise UsageError("--backend needs a backend name")
        elif arg == "-m" or (arg.startswith("-m") and len(arg) > 2):
            if arg == "-m":
                if i + 1 >= len(argv):
                    raise UsageError("-m needs a module name")
                i += 1
                opts.module = argv[i]
            else:
                opts.module = arg[2:]
            opts.args = argv[i + 1:]
            return opts
        elif arg == "--":
            if i + 1 >= len(argv):
                raise UsageError("no script given")
            opts.script, opts.args = argv[i + 1], argv[i + 2:]
            return opts
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown option {arg!r} (options for the program go after the script or module)")
        else:
            opts.script, opts.args = arg, argv[i + 1:]
            return opts
        i += 1
    raise UsageError("no script or -m module given")


def main(argv: list[str]) -> int:
    try:
        opts = parse(argv)
        factory = _loop_factory(opts.backend, timings=opts.stats)
        target = _check_target(opts)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
    loops: list[Any] = []
    if opts.stats:
        factory = _recording(factory, loops)
    from .default_loop import multiloop_as_default

    try:
        with multiloop_as_default(factory), _program_sys(opts, target):
            _execute(opts, target)
    except SystemExit:
        raise
    except KeyboardInterrupt as exc:
        _report(exc)
        return 130
    except BaseException as exc:  # noqa: BLE001 - the program's uncaught exception: report it like python
        _report(exc)
        return 1
    finally:
        if opts.stats:
            from .stats_report import format_loops

            sys.stdout.flush()
            print(format_loops(loops), file=sys.stderr)
    return 0


# -- checking the command line ---------------------------------------------------------------------------------
def _loop_factory(backend: str | None, timings: bool = False) -> Callable[[], Any]:
    from ..api import loop_factory
    from ..errors import MultiloopError

    try:
        return loop_factory(backend, timings=timings)
    except (MultiloopError, ValueError, TypeError) as exc:
        raise UsageError(str(exc).replace("(backend=)", "(--backend)", 1)) from None


def _check_target(opts: Options) -> str:
    """The script's path or the module's name, once it is known to exist."""
    if opts.module is not None:
        try:
            spec = importlib.util.find_spec(opts.module)
            if spec is not None and spec.submodule_search_locations is not None:  # a package: its __main__
                if importlib.util.find_spec(f"{opts.module}.__main__") is None:
                    raise UsageError(f"No module named {opts.module}.__main__; {opts.module!r} is a package and "
                                     "cannot be directly executed", status=1)
        except ModuleNotFoundError as exc:
            raise UsageError(f"No module named {exc.name or opts.module}", status=1) from None
        except ValueError as exc:  # empty or relative module name
            raise UsageError(f"bad module name {opts.module!r}: {exc}", status=1) from None
        if spec is None:
            raise UsageError(f"No module named {opts.module}", status=1)
        return opts.module
    assert opts.script is not None
    path = opts.script
    if not os.path.exists(path):
        raise UsageError(f"can't open file {os.path.abspath(path)!r}: [Errno 2] No such file or directory")
    if os.path.isdir(path) and not any(os.path.exists(os.path.join(path, f"__main__.{ext}"))
                                       for ext in ("py", "pyc")):
        raise UsageError(f"can't find '__main__' module in {path!r}")
    return path


def _recording(factory: Callable[[], Any], loops: list[Any]) -> Callable[[], Any]:
    def make() -> Any:
        loop = factory()
        loops.append(loop)
        return loop

    return make


# -- running the program ---------------------------------------------------------------------------------------
class _program_sys:
    """``sys.argv`` and ``sys.path[0]`` as python would set them for the program; restored afterwards (the
    launcher may run in-process, in tests)."""

    def __init__(self, opts: Options, target: str) -> None:
        self.opts = opts
        self.target = target

    def __enter__(self) -> None:
        self.saved = (list(sys.argv), list(sys.path))
        sys.argv[:] = [self.target, *self.opts.args]
        if sys.flags.safe_path:
            return
        if self.opts.module is not None:
            entry: str | None = os.getcwd()
        elif os.path.isfile(self.target) and not _is_zip(self.target):
            entry = os.path.dirname(os.path.realpath(self.target))
        else:
            entry = None  # a directory or zip: runpy puts the target itself first
        if sys.path:
            del sys.path[0]
        if entry is not None:
            sys.path.insert(0, entry)

    def __exit__(self, *exc: object) -> None:
        sys.argv[:], sys.path[:] = self.saved


def _is_zip(path: str) -> bool:
    import zipfile

    return zipfile.is_zipfile(path)


def _execute(opts: Options, target: str) -> None:
    if opts.module is not None:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(target, run_name="__main__")


def _report(exc: BaseException) -> None:
    _trim(exc, set())
    sys.stdout.flush()
    sys.excepthook(type(exc), exc, exc.__traceback__)


def _is_launcher_frame(tb: TracebackType) -> bool:
    if tb.tb_frame.f_globals.get("__name__") == "__main__":
        return False  # the program's main module, even when it is one of multiloop's own (-m multiloop.x)
    filename = tb.tb_frame.f_code.co_filename
    return (filename.startswith(_PACKAGE_DIR + os.sep) or filename == runpy.__file__
            or filename == "<frozen runpy>")


def _trim(exc: BaseException, seen: set[int]) -> None:
    """Drop launcher and pass-through multiloop frames from ``exc``, its causes, contexts and group members."""
    if id(exc) in seen:
        return
    seen.add(id(exc))
    frames: list[TracebackType] = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    # Keep a multiloop frame only if no program frame follows it: that is where the exception was raised.
    keep: list[TracebackType] = []
    program_below = False
    for frame in reversed(frames):
        if not _is_launcher_frame(frame):
            program_below = True
            keep.append(frame)
        elif not program_below:
            keep.append(frame)
    keep.reverse()
    if not program_below:
        # Raised before the program ran any code (a SyntaxError while compiling it): python shows no frames.
        keep = []
    for upper, lower in zip(keep, keep[1:], strict=False):
        upper.tb_next = lower
    if keep:
        keep[-1].tb_next = None
    exc.__traceback__ = keep[0] if keep else None
    for other in (exc.__cause__, exc.__context__, *getattr(exc, "exceptions", ())):
        if isinstance(other, BaseException):
            _trim(other, seen)
