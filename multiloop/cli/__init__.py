"""``python -m multiloop COMMAND``: the command-line interface, one module per subcommand.

A subcommand module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``main(args) -> int``; listing it
in ``COMMANDS`` is all it takes to add one. A module that sets ``RAW = True`` receives the rest of the command
line untouched (``main(argv: list[str])``) because it must pass options through to another program, as ``run``
does; argparse then only shows it in ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

#: Subcommand modules, in the order ``--help`` lists them. The first one is the default command.
COMMANDS = ("info", "run", "bench", "check-backend", "soak")


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="python -m multiloop",
        description="multiloop: an asyncio event loop whose I/O backend is a plugin. Without a command: info.")
    parser.add_argument("--version", action="version", version=f"multiloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name in COMMANDS:
        module = _load(name)
        modules[module.NAME] = module
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__.split("\n\n")[0]
                           if module.__doc__ else module.HELP, add_help=not getattr(module, "RAW", False))
        if not getattr(module, "RAW", False):
            module.add_arguments(p)
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, modules = build_parser()
    if argv and argv[0] in modules and getattr(modules[argv[0]], "RAW", False):
        result: int = modules[argv[0]].main(argv[1:])
        return result
    args = parser.parse_args(argv)
    module = modules[args.command or COMMANDS[0]]
    if args.command is None:  # no command: the default one with its defaults
        args = parser.parse_args([module.NAME])
    result = module.main(args)
    return result
