"""``python -m multiloop info [--json] [--require CAP ...] [--avoid NAME ...]``: every backend, whether it can
run here (and why not), its priority, capabilities and origin, and which one ``new_loop()`` would pick."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

NAME = "info"
HELP = "list backends, what they can do, and which one new_loop() picks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..backend import CAPABILITIES

    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--require", action="append", default=[], metavar="CAP",
                        help=f"capability the pick must have (one of {', '.join(sorted(CAPABILITIES))})")
    parser.add_argument("--avoid", action="append", default=[], metavar="NAME", help="backend not to pick")


def _choice(require: list[str], avoid: list[str]) -> tuple[str | None, str | None]:
    from ..errors import MultiloopError
    from ..registry import get_registry

    try:
        return get_registry().choose(None, require=require, avoid=avoid).name, None
    except MultiloopError as exc:
        return None, str(exc)


def main(args: argparse.Namespace) -> int:
    try:
        return _info(args)
    except ValueError as exc:  # a capability name that does not exist
        print(f"python -m multiloop info: error: {exc}", file=sys.stderr)
        return 2


def _info(args: argparse.Namespace) -> int:
    from .. import __version__, compiled
    from ..api import backends
    from ..backend import CAPABILITIES
    from ..registry import ENV_AVOID, ENV_BACKEND

    rows = backends()
    chosen, why_none = _choice(args.require, args.avoid)
    hot = compiled.status()
    if args.json:
        doc: dict[str, Any] = {
            "version": __version__,
            "python": sys.version.split()[0],
            "platform": sys.platform,
            "env": {ENV_BACKEND: os.environ.get(ENV_BACKEND), ENV_AVOID: os.environ.get(ENV_AVOID)},
            "default": chosen,
            "default_error": why_none,
            "hot_path": {"mode": hot["mode"], "reason": hot["reason"], "modules": hot["modules"]},
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
    consistent = "" if hot["consistent"] else " [modules loaded inconsistently: see --json]"
    print(f"multiloop {__version__} on Python {sys.version.split()[0]} ({sys.platform}); hot path: "
          f"{hot['reason']}{consistent}")
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
