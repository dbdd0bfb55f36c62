"""Run the kit's behavioural checks against one backend, in this process, one after the other.

    python -m multiloop.kit.behaviour --backend NAME [--quick] [--only A,B] [--json FILE] [--timeout S]

Facts that shape the runner:

- The backend under test may hang (a wait that ignores every wake-up) or crash the interpreter (a C
  extension). Python cannot abort a hung call from another thread, but a signal handler in the main thread
  can: SIGALRM interrupts a blocking ``poll``/``epoll_wait``/``select`` (the handler raising makes PEP 475's
  retry give up) and pure-Python busy loops alike. So each check runs under ``setitimer(ITIMER_REAL)``.
- After such an interruption the process may be in any state (a loop left running, trio's run state
  half-torn down), so the runner stops there with exit status 3 -- through ``os._exit``, since an orderly
  exit would join threads (a child watcher, an executor) that may never finish -- and its caller
  (:mod:`multiloop.kit.cli`) starts a fresh process for the remaining checks. A crash is handled the same way: the JSON file is written
  before each check with its name as ``current``, so the caller knows which check killed the process.
- The result file is written after every check (atomically), so whatever happens it holds every outcome so
  far.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from typing import Any

from . import CHECKS
from .harness import Check, Outcome, run_check

#: Seconds one check may take before it is declared hung (longer than any bound a check sets itself).
DEFAULT_TIMEOUT = 120.0
#: Exit status after a hung check: the caller must continue in a fresh process.
EXIT_HUNG = 3


class CheckHung(BaseException):
    """Raised by the alarm in the main thread. A BaseException: checks catch Exception."""


def ordered_checks(quick: bool = False, only: list[str] | None = None) -> list[Check]:
    """Poller-level checks first (they localise a problem best), then loop-level ones, each in definition
    order; ``quick``: the quick subset; ``only``: these names (unknown names are an error)."""
    if only:
        unknown = [n for n in only if n not in CHECKS]
        if unknown:
            raise SystemExit(f"unknown check(s): {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    chosen = [c for c in CHECKS.values() if (not only or c.name in only) and (not quick or c.quick or only)]
    return sorted(chosen, key=lambda c: c.level != "poller")


def run_checks(backend: str, checks: list[Check], json_path: str | None, timeout: float,
               verbose: bool = False) -> int:
    """Run ``checks``; 0 if all passed or were skipped, 1 if any failed, EXIT_HUNG if one hung."""
    doc: dict[str, Any] = {"backend": backend, "python": sys.version.split()[0], "outcomes": [], "current": None}

    def write() -> None:
        if json_path:
            tmp = f"{json_path}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1)
            os.replace(tmp, json_path)

    hung = []

    def on_alarm(signum: int, frame: Any) -> None:
        hung.append(True)
        raise CheckHung()

    old = signal.signal(signal.SIGALRM, on_alarm)
    status = 0
    try:
        for chk in checks:
            doc["current"] = chk.name
            write()
            t0 = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                outcome = run_check(chk, backend)
            except CheckHung:
                outcome = None
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if hung:
                outcome = Outcome(chk.name, "failed", f"hung: still running after {timeout:.0f} s (a wait that "
                                  f"ignores its timeout and every wake-up?)", round(time.monotonic() - t0, 3))
            assert outcome is not None
            doc["outcomes"].append(asdict(outcome))
            doc["current"] = None
            write()
            if verbose:
                print(f"{outcome.outcome.upper():7} {chk.name} ({outcome.seconds:.2f}s)"
                      + (f"\n        {outcome.message}" if outcome.message else ""), flush=True)
            if outcome.outcome in ("failed", "error"):
                status = 1
            if hung:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(EXIT_HUNG)
    finally:
        signal.signal(signal.SIGALRM, old)
    return status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m multiloop.kit.behaviour", description=__doc__.splitlines()[0])
    p.add_argument("--backend", required=True)
    p.add_argument("--quick", action="store_true", help="only the quick subset")
    p.add_argument("--only", default="", help="comma-separated check names")
    p.add_argument("--json", help="write the outcomes here (updated after every check)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per check")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    only = [n for n in args.only.split(",") if n]
    checks = ordered_checks(args.quick, only)
    if args.list:
        for c in checks:
            print(f"{c.level:6} {'quick' if c.quick else '     '} {c.name}: {c.summary}")
        return 0
    return run_checks(args.backend, checks, args.json, args.timeout, args.verbose)


if __name__ == "__main__":
    status = main()
    # Every outcome is in the JSON file already. A broken backend may have left threads that never end (a
    # child watcher, an executor), which an orderly exit would wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
