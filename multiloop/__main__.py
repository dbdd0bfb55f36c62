"""``python -m multiloop``: what can this machine run, and what would multiloop pick?

    python -m multiloop info [--json] [--require CAP ...] [--avoid NAME ...]
    python -m multiloop run MODULE_OR_FILE [--backend NAME] [args...]   # run a script on a multiloop loop
    python -m multiloop check-backend NAME [--quick] [--json FILE]     # the backend author's kit
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from typing import Any

from . import __version__
from .api import backends
from .backend import CAPABILITIES
from .errors import MultiloopError
from .registry import ENV_AVOID, ENV_BACKEND, get_registry


def _choice(require: list[str], avoid: list[str]) -> tuple[str | None, str | None]:
    try:
        return get_registry().choose(None, require=require, avoid=avoid).name, None
    except MultiloopError as exc:
        return None, str(exc)


def info(args: argparse.Namespace) -> int:
    rows = backends()
    chosen, why_none = _choice(args.require, args.avoid)
    if args.json:
        doc: dict[str, Any] = {
            "version": __version__,
            "python": sys.version.split()[0],
            "platform": sys.platform,
            "env": {ENV_BACKEND: os.environ.get(ENV_BACKEND), ENV_AVOID: os.environ.get(ENV_AVOID)},
            "default": chosen,
            "default_error": why_none,
            "backends": [
                {"name": r.name, "available": r.available, "reason": r.reason, "priority": r.priority,
                 "capabilities": sorted(r.capabilities), "origin": r.origin, "auto": r.auto,
                 "description": r.description} for r in rows],
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    caps = sorted(CAPABILITIES)
    header = ["backend", "available", "priority", *caps, "origin", "why not"]
    table = []
    for r in rows:
        mark = "yes" if r.available else "no"
        if r.available and not r.auto:
            mark = "yes (opt-in)"
        table.append([r.name, mark, str(r.priority), *("x" if c in r.capabilities else "-" for c in caps),
                      r.origin, r.reason or ""])
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(header)]
    print(f"multiloop {__version__} on Python {sys.version.split()[0]} ({sys.platform})")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    env = {k: v for k in (ENV_BACKEND, ENV_AVOID) if (v := os.environ.get(k))}
    suffix = f" (environment: {', '.join(f'{k}={v}' for k, v in env.items())})" if env else ""
    if chosen:
        print(f"new_loop() picks: {chosen}{suffix}")
        return 0
    print(f"new_loop() fails: {why_none}{suffix}")
    return 1


def run(args: argparse.Namespace) -> int:
    import asyncio

    from .api import EventLoopPolicy

    if args.backend:
        os.environ[ENV_BACKEND] = args.backend
    asyncio.set_event_loop_policy(EventLoopPolicy(args.backend))
    sys.argv = [args.target, *args.args]
    if args.target.endswith(".py") or os.sep in args.target:
        runpy.run_path(args.target, run_name="__main__")
    else:
        runpy.run_module(args.target, run_name="__main__", alter_sys=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m multiloop", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command")
    p_info = sub.add_parser("info", help="list backends, what they can do, and which one new_loop() picks")
    p_info.add_argument("--json", action="store_true", help="machine-readable output")
    p_info.add_argument("--require", action="append", default=[], metavar="CAP",
                        help=f"capability the pick must have (one of {', '.join(sorted(CAPABILITIES))})")
    p_info.add_argument("--avoid", action="append", default=[], metavar="NAME", help="backend not to pick")
    p_run = sub.add_parser("run", help="run a script or module with multiloop as asyncio's loop (via the policy)")
    p_run.add_argument("--backend", default=None)
    p_run.add_argument("target")
    p_run.add_argument("args", nargs=argparse.REMAINDER)
    p_check = sub.add_parser("check-backend", help="check a backend against multiloop's behavioural suite and "
                                                    "CPython's test_asyncio (the backend author's kit)")
    from .kit import cli as kit_cli

    kit_cli.add_arguments(p_check)
    args = parser.parse_args(argv)
    if args.command == "check-backend":
        return kit_cli.main(args)
    if args.command in (None, "info"):
        if args.command is None:
            args = p_info.parse_args([])
        try:
            return info(args)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
