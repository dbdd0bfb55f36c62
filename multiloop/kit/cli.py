"""``python -m multiloop check-backend NAME``: does this backend behave as multiloop's core needs?

    python -m multiloop check-backend epoll                  # every check + CPython's test_asyncio
    python -m multiloop check-backend mine --quick           # the quick checks + test_events (seconds)
    python -m multiloop check-backend mine --plugin mypkg.multiloop_plugin   # not installed yet
    python -m multiloop check-backend mine --json report.json

Facts that shape the command:

- The backend may hang or crash the interpreter, and CPython's asyncio tests change process-wide state. So
  nothing runs in this process: the behavioural checks run in a child (:mod:`multiloop.kit.behaviour`),
  restarted after a hang or crash for the checks still to do; each CPython module runs in a child of the
  conformance runner (:mod:`multiloop.kit.conformance.cpython_runner`), as ``tests/conformance`` does it.
- A backend that is not installed yet is still checkable: ``--plugin MODULE`` (repeatable) puts the module
  on ``MULTILOOP_PLUGINS``, which every child inherits; the registry loads it like an entry point.
- CPython's ``test`` package is missing from some distributions' interpreters: then that part is reported
  as not run (a warning, not a failure of the backend).

The verdict lists every failed check with what it found and every failing CPython test by id; the exit
status is 0 when everything passed, 1 when something failed, 2 when the backend cannot be checked (unknown,
or its probe says it cannot run here).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from .behaviour import DEFAULT_TIMEOUT, EXIT_HUNG, ordered_checks
from .conformance.conformance_scope import modules_in_scope, parse_scopes

#: CPython modules of ``--quick``: the event loop's own tests (scheduling, fds, sockets, pipes, subprocesses).
QUICK_MODULES = ["test_events"]
#: Seconds one CPython module may take in its child process.
MODULE_TIMEOUT = 900.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("backend", metavar="NAME", help="the backend to check (as listed by 'python -m multiloop info')")
    p.add_argument("--quick", action="store_true",
                   help=f"the quick checks and CPython's {', '.join(QUICK_MODULES)} only")
    p.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE as a multiloop plugin first (a backend that is not installed)")
    p.add_argument("--checks", default="", metavar="NAMES", help="only these behavioural checks (comma-separated)")
    p.add_argument("--cpython", default=None, metavar="MODULES",
                   help="CPython test.test_asyncio modules to run (comma-separated; 'none' to skip; default: "
                        "all in scope, or the quick ones)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per behavioural check")
    p.add_argument("-v", "--verbose", action="store_true", help="print each check as it finishes")


def _environ(plugins: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    if plugins:
        existing = [n for n in env.get("MULTILOOP_PLUGINS", "").replace(",", " ").split() if n]
        env["MULTILOOP_PLUGINS"] = ",".join(dict.fromkeys([*existing, *plugins]))
    env.pop("MULTILOOP_BACKEND", None)  # each child is told its backend explicitly
    return env


def _backend_problem(backend: str, env: dict[str, str]) -> str | None:
    """Why ``backend`` cannot be checked (asked in a child, with the same plugins), or None."""
    code = ("import json, sys, multiloop; rows = {b.name: b for b in multiloop.backends()}; "
            "b = rows.get(sys.argv[1]); "
            "print(json.dumps(None if b is None else [b.available, b.reason, b.origin, sorted(rows)]))")
    proc = subprocess.run([sys.executable, "-c", code, backend], env=env, capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        return f"listing the backends failed:\n{proc.stderr.strip()}"
    row = json.loads(proc.stdout)
    if row is None:
        known = json.loads(subprocess.run([sys.executable, "-c", "import json, multiloop; print(json.dumps("
                                           "[b.name for b in multiloop.backends()]))"], env=env,
                                          capture_output=True, text=True, timeout=120).stdout or "[]")
        return f"unknown backend {backend!r}; known: {', '.join(known)} (a plugin not installed? use --plugin)"
    available, reason, origin, _ = row
    if not available:
        return f"backend {backend!r} ({origin}) cannot run here: {reason}"
    return None


def run_behaviour(backend: str, names: list[str], env: dict[str, str], timeout: float,
                  verbose: bool) -> list[dict[str, Any]]:
    """Every named check's outcome, continuing in a fresh child after a hang or a crash."""
    outcomes: list[dict[str, Any]] = []
    todo = list(names)
    while todo:
        fd, path = tempfile.mkstemp(prefix=f"multiloop-kit-{backend}-", suffix=".json")
        os.close(fd)
        cmd = [sys.executable, "-m", "multiloop.kit.behaviour", "--backend", backend, "--only", ",".join(todo),
               "--json", path, "--timeout", str(timeout)]
        if verbose:
            cmd.append("-v")
        try:
            proc = subprocess.run(cmd, env=env, stdout=None if verbose else subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, timeout=timeout * len(todo) + 60)
            returncode, stderr = proc.returncode, proc.stderr or ""
        except subprocess.TimeoutExpired as exc:
            returncode, stderr = None, str(exc.stderr or "")
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError):
            doc = {"outcomes": [], "current": todo[0]}
        finally:
            for p in (path, f"{path}.tmp"):
                if os.path.exists(p):
                    os.unlink(p)
        outcomes.extend(doc["outcomes"])
        done = {o["name"] for o in doc["outcomes"]}
        current = doc.get("current")
        if current and current not in done:
            why = ("the child process was killed by the kit's overall timeout" if returncode is None else
                   f"the child process died (exit status {returncode}) while it ran")
            outcomes.append({"name": current, "outcome": "failed", "seconds": 0.0,
                             "message": f"crashed: {why}\n{stderr.strip()[-2000:]}"})
            done.add(current)
        elif returncode not in (0, 1, EXIT_HUNG) and not done:
            raise SystemExit(f"the behaviour runner failed to start (exit status {returncode}):\n{stderr}")
        todo = [n for n in todo if n not in done]
    return outcomes


def _cpython_available() -> bool:
    try:
        return importlib.util.find_spec("test.test_asyncio") is not None
    except ImportError:
        return False


def run_cpython(backend: str, modules: list[str], env: dict[str, str], verbose: bool) -> dict[str, Any]:
    """module -> the conformance runner's summary (or an error row)."""
    results: dict[str, Any] = {}
    for module in modules:
        fd, path = tempfile.mkstemp(prefix=f"multiloop-kit-{module}-", suffix=".json")
        os.close(fd)
        cmd = [sys.executable, "-m", "multiloop.kit.conformance.cpython_runner", "--backend", backend,
               "--module", module, "--scopes", "all", "--json", path]
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=MODULE_TIMEOUT)
            log = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired:
            log = f"timed out after {MODULE_TIMEOUT:.0f} s"
        try:
            with open(path, encoding="utf-8") as f:
                row = json.load(f)["modules"].get(module)
        except (OSError, ValueError, KeyError):
            row = None
        finally:
            os.unlink(path)
        if row is None:
            row = {"module": module, "errors": 1, "failed": 0, "passed": 0, "failures": [], "problems": [
                f"the conformance runner produced no result: {log.strip()[-1500:]}"]}
        results[module] = row
        if verbose:
            print(f"  CPython {module}: {_cpython_line(row)} ({time.monotonic() - t0:.0f}s)", flush=True)
    return results


def _cpython_line(row: dict[str, Any]) -> str:
    if row.get("missing"):
        return "not in this Python"
    return (f"{row.get('passed', 0)} passed, {row.get('failed', 0)} failed, {row.get('errors', 0)} errors, "
            f"{row.get('skipped', 0)} skipped, {row.get('excluded', 0)} excluded")


def main(args: argparse.Namespace) -> int:
    env = _environ(args.plugin)
    problem = _backend_problem(args.backend, env)
    if problem:
        print(f"check-backend: {problem}", file=sys.stderr)
        return 2
    only = [n for n in args.checks.split(",") if n]
    try:
        names = [c.name for c in ordered_checks(args.quick, only)]
    except SystemExit as exc:
        print(f"check-backend: {exc}", file=sys.stderr)
        return 2
    if args.cpython is None:
        modules = QUICK_MODULES if args.quick else modules_in_scope(parse_scopes("all"))
    else:
        modules = [m for m in args.cpython.split(",") if m and m != "none"]
    mode = "quick" if args.quick else "full"
    print(f"multiloop check-backend {args.backend} ({mode}) on Python {sys.version.split()[0]}", flush=True)
    t0 = time.monotonic()
    outcomes = run_behaviour(args.backend, names, env, args.timeout, args.verbose)
    cpython: dict[str, Any] = {}
    notes = []
    if modules:
        if _cpython_available():
            present = [m for m in modules if importlib.util.find_spec(f"test.test_asyncio.{m}") is not None]
            if len(present) < len(modules):
                notes.append(f"not in this Python's test_asyncio: {', '.join(m for m in modules if m not in present)}")
            cpython = run_cpython(args.backend, present, env, args.verbose)
        else:
            notes.append("CPython's test.test_asyncio is not installed in this interpreter: that part was not run")
    report = verdict(args.backend, outcomes, cpython, notes, round(time.monotonic() - t0, 1))
    print_verdict(report)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return 0 if report["verdict"] == "pass" else 1


def verdict(backend: str, outcomes: list[dict[str, Any]], cpython: dict[str, Any], notes: list[str],
            seconds: float) -> dict[str, Any]:
    problems = [f"check {o['name']}: {o['message']}" for o in outcomes if o["outcome"] in ("failed", "error")]
    for module, row in cpython.items():
        for failure in row.get("failures", ()):
            problems.append(f"CPython {failure['id']} {failure['kind']}: "
                            f"{failure.get('excerpt', '').strip().splitlines()[-1:] or ''}")
        problems += [f"CPython {module}: {p}" for p in row.get("problems", ())]
        if (row.get("failed") or row.get("errors")) and not row.get("failures") and not row.get("problems"):
            problems.append(f"CPython {module}: {_cpython_line(row)}")
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o["outcome"]] = counts.get(o["outcome"], 0) + 1
    return {"backend": backend, "python": sys.version.split()[0], "verdict": "fail" if problems else "pass",
            "problems": problems, "checks": outcomes, "check_counts": counts, "cpython": cpython,
            "notes": notes, "seconds": seconds}


def print_verdict(report: dict[str, Any]) -> None:
    counts = report["check_counts"]
    print(f"behaviour: {sum(counts.values())} checks: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    for o in report["checks"]:
        if o["outcome"] != "passed":
            print(f"  {o['outcome'].upper():7} {o['name']}")
            for line in o["message"].strip().splitlines()[:12]:
                print(f"          {line}")
    for module, row in report["cpython"].items():
        print(f"CPython {module}: {_cpython_line(row)}")
        for failure in row.get("failures", ())[:50]:
            print(f"  {failure['kind'].upper():7} {failure['id']}")
        for p in row.get("problems", ()):
            print(f"  PROBLEM {p}")
    for note in report["notes"]:
        print(f"note: {note}")
    if report["verdict"] == "pass":
        print(f"VERDICT: PASS: backend {report['backend']!r} behaves as multiloop's core needs "
              f"({report['seconds']} s)")
    else:
        print(f"VERDICT: FAIL: backend {report['backend']!r}: {len(report['problems'])} problem(s)")
        for p in report["problems"][:30]:
            print(f"  - {p.splitlines()[0]}")
