#!/usr/bin/env python
"""Run CPython's own ``test.test_asyncio.<module>`` tests against one multiloop backend, in this process.

    python -m multiloop.kit.conformance.cpython_runner --backend epoll --module test_tasks [--json out.json]
    python -m multiloop.kit.conformance.cpython_runner --backend poll --module test_events --list

Meant to run in a fresh process (the pytest wrapper starts one per module and backend): it changes
process-wide asyncio state.

1. asyncio's default policy class is made to produce ``multiloop.new_loop(backend)`` loops, so every
   ``asyncio.new_event_loop()``/``asyncio.run()``/``asyncio.Runner()``/``IsolatedAsyncioTestCase`` loop of
   the tests is a multiloop loop, even after the modules reset the policy in their own setUp/tearDown;
   ``asyncio.EventLoop`` (3.13+, which 3.14's tests pass as ``loop_factory``) makes them too.
2. Mixins whose stock concrete classes build stock loops directly are re-combined into ``Multiloop...``
   classes making multiloop loops; their stock concrete classes are not run (see conformance_scope.py).
3. ``multiloop.loop.EventLoop.__init__`` and ``asyncio.BaseEventLoop.__init__`` are counted per test, so the
   summary says how many passing tests actually ran on a multiloop loop ("exercised") and which ran only on
   stock loops (``test_utils.TestLoop``, mocked ``BaseEventLoop``s).
4. Tests listed in exclusions.txt for this Python (and backend) are not run; each has a reason there.

The summary (printed, and written as JSON with ``--json``): tests run, passed (and of them exercised),
failed, errors, skipped, excluded, and each failure's id with the end of its traceback.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import fnmatch
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
import threading
import time
import unittest
import warnings
from typing import Any

from multiloop.kit.conformance.conformance_scope import MODULES, NET_APIS, UNIX_APIS, Adapt, parse_scopes
from multiloop.kit.harness import restore_ctrl_c

HERE = os.path.dirname(os.path.abspath(__file__))

EXCLUSIONS_FILE = os.path.join(HERE, "exclusions.txt")
PACKAGE = "test.test_asyncio"
PY = sys.version_info[:2]
EXCERPT_LINES = 30


# --------------------------------------------------------------------------------------------- exclusions
class Exclusion:
    """One line of exclusions.txt: ``<id glob>  [conditions]  -- reason``.

    Conditions (optional, comma-separated in brackets): ``py3.12`` (that minor version only), ``py3.12+``
    (that one and later), ``py<3.13`` (earlier than), ``backend:select``. All must hold."""

    def __init__(self, pattern: str, conditions: list[str], reason: str, lineno: int) -> None:
        self.pattern = pattern
        self.conditions = conditions
        self.reason = reason
        self.lineno = lineno

    def applies(self, backend: str) -> bool:
        for cond in self.conditions:
            if cond.startswith("backend:"):
                if cond.split(":", 1)[1] != backend:
                    return False
                continue
            m = re.fullmatch(r"py(<)?(\d+)\.(\d+)(\+)?", cond)
            if not m:
                raise ValueError(f"exclusions.txt:{self.lineno}: bad condition {cond!r}")
            ver = (int(m.group(2)), int(m.group(3)))
            if m.group(1):
                ok = PY < ver
            elif m.group(4):
                ok = PY >= ver
            else:
                ok = PY == ver
            if not ok:
                return False
        return True

    def matches(self, test_id: str) -> bool:
        return fnmatch.fnmatchcase(test_id, self.pattern)


def load_exclusions(path: str = EXCLUSIONS_FILE) -> list[Exclusion]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            head, sep, reason = line.partition(" -- ")
            if not sep or not reason.strip():
                raise ValueError(f"{path}:{lineno}: every exclusion needs ' -- reason'")
            m = re.fullmatch(r"(\S+)\s*(?:\[([^\]]*)\])?\s*", head)
            if not m:
                raise ValueError(f"{path}:{lineno}: expected '<id glob> [conditions] -- reason'")
            conds = [c.strip() for c in (m.group(2) or "").split(",") if c.strip()]
            rows.append(Exclusion(m.group(1), conds, reason.strip(), lineno))
    return rows


# ------------------------------------------------------------------------------------------------ census
class Census:
    """Counts loops made in this process: multiloop loops, and stock asyncio loops by class name."""

    def __init__(self) -> None:
        self.multiloop = 0
        self.stock: collections.Counter[str] = collections.Counter()

    def install(self) -> None:
        import asyncio

        import multiloop.loop

        census = self
        ml_init = multiloop.loop.EventLoop.__init__

        def counted_multiloop_init(loop: Any, *args: Any, **kwargs: Any) -> None:
            census.multiloop += 1
            ml_init(loop, *args, **kwargs)

        multiloop.loop.EventLoop.__init__ = counted_multiloop_init  # type: ignore[method-assign,assignment]

        stock_init = asyncio.BaseEventLoop.__init__

        def counted_stock_init(loop: Any, *args: Any, **kwargs: Any) -> None:
            census.stock[type(loop).__name__] += 1
            stock_init(loop, *args, **kwargs)

        asyncio.BaseEventLoop.__init__ = counted_stock_init  # type: ignore[method-assign,assignment]

    def snapshot(self) -> tuple[int, collections.Counter[str]]:
        return self.multiloop, collections.Counter(self.stock)


def install_multiloop_policy(backend: str) -> None:
    """Make asyncio's default policy class build multiloop loops, for the whole process.

    The test modules reset the policy (``set_event_loop_policy(None)``) in setUp/tearDown/tearDownModule and
    make fresh ``DefaultEventLoopPolicy()`` objects; changing the class's loop factory (the attribute its
    ``new_event_loop`` calls) covers all of those. Harness-only: multiloop itself never touches it."""
    import asyncio

    import multiloop

    factory = multiloop.loop_factory(backend)  # fails now, clearly, for an unknown/unavailable backend
    with warnings.catch_warnings():
        # 3.14+ deprecates the policy API; the harness still needs it (the tests themselves use it).
        warnings.simplefilter("ignore", DeprecationWarning)
        policy_cls = asyncio.DefaultEventLoopPolicy
        if "_loop_factory" not in vars(policy_cls) and not hasattr(policy_cls, "_loop_factory"):
            raise SystemExit(f"asyncio.DefaultEventLoopPolicy has no _loop_factory on Python {sys.version}: "
                             f"the conformance runner needs another way to install multiloop loops")
        policy_cls._loop_factory = staticmethod(factory)  # type: ignore[attr-defined]
        asyncio.set_event_loop_policy(None)
    if hasattr(asyncio, "EventLoop"):
        # 3.13+: tests name asyncio.EventLoop as a loop factory (loop_factory = asyncio.EventLoop, evaluated
        # when their module is imported, i.e. after this). A class, so it does not bind as a method.
        class MultiloopEventLoop:
            def __new__(cls) -> Any:
                return factory()

        asyncio.EventLoop = MultiloopEventLoop
    loop = asyncio.new_event_loop()
    try:
        if type(loop).__module__.split(".")[0] != "multiloop" or getattr(loop, "backend", None) != backend:
            raise SystemExit(f"policy did not produce a multiloop {backend} loop: {loop!r}")
    finally:
        loop.close()


# ---------------------------------------------------------------------------------------- classification
_NET_RE = re.compile(r"\b(?:" + "|".join(map(re.escape, NET_APIS)) + r")\b")
_UNIX_RE = re.compile(r"\b(?:" + "|".join(map(re.escape, UNIX_APIS)) + r")\b")
_HELPER_RE = re.compile(r"\bself\.(\w+)\s*\(")


def required_scopes(cls: type, name: str) -> frozenset[str]:
    """The scopes a test needs, from the APIs named in its name, its source and the source of the methods
    of its class it calls (``self._basetest_create_connection(...)``, ``self.test_other(...)``)."""
    sources = [name]
    seen: set[str] = set()

    def visit(attr: str) -> None:
        if attr in seen:
            return
        seen.add(attr)
        func = getattr(cls, attr, None)
        if func is None or not inspect.isfunction(inspect.unwrap(func)):
            return  # not a method of the test class (self.loop..., self.assertEqual is fine either way)
        try:
            src = inspect.getsource(inspect.unwrap(func))
        except (OSError, TypeError):
            return
        sources.append(src)
        for helper in _HELPER_RE.findall(src):
            visit(helper)

    visit(name)
    text = "\n".join(sources)
    # API names inside the test's own name count too (test_create_server_multiple_hosts_ipv4)
    text += "\n" + " ".join(api for api in NET_APIS + UNIX_APIS if api in name)
    needed = {"core"}
    if _NET_RE.search(text):
        needed.add("net")
    if _UNIX_RE.search(text):
        needed.add("unix")
    return frozenset(needed)


def primary_scope(needed: frozenset[str]) -> str:
    return "unix" if "unix" in needed else "net" if "net" in needed else "core"


# -------------------------------------------------------------------------------------------- collection
def short_id(test_id: str) -> str:
    prefix = PACKAGE + "."
    return test_id[len(prefix):] if test_id.startswith(prefix) else test_id


def _adapted_class(mod, test_utils, adapt: Adapt, mixins: list[type], backend: str,
                   name: str | None = None, bases: tuple[type, ...] | None = None) -> type:
    import multiloop

    name = name or adapt.name
    if bases is None:
        bases = (*mixins, test_utils.TestCase if adapt.base == "test_utils.TestCase" else unittest.TestCase)
    attrs: dict[str, object] = {"__module__": mod.__name__, "__qualname__": name,
                                "__doc__": f"{'+'.join(adapt.mixins)} on multiloop backend {backend!r}"}
    skip_setup_of: Any = mixins[-1]

    def new_loop() -> Any:
        loop: Any = multiloop.new_loop(backend)
        if adapt.runner_flag:
            loop.shutdown_ag_run = False
            real_shutdown_asyncgens = loop.shutdown_asyncgens

            async def shutdown_asyncgens():
                loop.shutdown_ag_run = True
                await real_shutdown_asyncgens()

            loop.shutdown_asyncgens = shutdown_asyncgens
        return loop

    if adapt.method == "setUp":
        def setUp(self: Any) -> None:
            super(skip_setup_of, self).setUp()  # the mixin's own setUp (if any) would build a stock loop
            self.loop = new_loop()
            self.set_event_loop(self.loop)

        attrs["setUp"] = setUp
    else:
        def make_loop(self):
            return new_loop()

        attrs[adapt.method] = make_loop
    return type(name, bases, attrs)


def _adapted_classes(mod, test_utils, adapt: Adapt, mixins: list[type], backend: str) -> list[type]:
    if not adapt.each_subclass:
        return [_adapted_class(mod, test_utils, adapt, mixins, backend)]
    out = []
    for name, obj in sorted(vars(mod).items()):
        if isinstance(obj, type) and obj.__module__ == mod.__name__ and obj not in mixins \
                and all(issubclass(obj, m) for m in mixins):
            out.append(_adapted_class(mod, test_utils, adapt, mixins, backend, name=adapt.name + name,
                                      bases=(obj,)))
    return out


class Plan:
    """What one module contributes: the tests to run, the excluded ones and the classes not run."""

    def __init__(self) -> None:
        self.tests: list[unittest.TestCase] = []
        self.excluded: list[dict[str, str]] = []
        self.out_of_scope: list[str] = []
        self.dropped: dict[str, str] = {}
        self.scope_of: dict[str, str] = {}


def plan_module(modname: str, backend: str, scopes: tuple[str, ...], exclusions: list[Exclusion],
                pattern: str | None = None) -> Plan:
    spec = MODULES[modname]
    mod = importlib.import_module(f"{PACKAGE}.{modname}")
    test_utils = importlib.import_module(f"{PACKAGE}.utils")
    loader = unittest.TestLoader()
    plan = Plan()
    enabled = set(scopes)
    candidates: list[tuple[type, str, str]] = []  # (class, test name, primary scope)

    adapted_mixins: list[type] = []
    for adapt in spec.adapt:
        mixins: list[Any] = [getattr(mod, n, None) for n in adapt.mixins]
        if any(m is None for m in mixins) and adapt.fallback_mixins:
            mixins = [getattr(mod, n, None) for n in adapt.fallback_mixins]
        if any(m is None for m in mixins):
            plan.dropped[adapt.name] = f"mixins {adapt.mixins} not all defined on this Python/platform"
            continue
        adapted_mixins.extend(mixins)
        for cls, name in ((c, n) for c in _adapted_classes(mod, test_utils, adapt, mixins, backend)
                          for n in loader.getTestCaseNames(c)):
            if spec.classify:
                needed = required_scopes(cls, name)
                prim = primary_scope(needed)
                if adapt.scopes is not None and prim not in adapt.scopes:
                    continue  # runs in the other adapted class
            else:
                needed = frozenset({"core", spec.scope})
                prim = spec.scope
            if needed <= enabled:
                candidates.append((cls, name, prim))
            else:
                plan.out_of_scope.append(f"{modname}.{cls.__name__}.{name} [{prim}]")

    for name, obj in sorted(vars(mod).items()):
        if not (isinstance(obj, type) and issubclass(obj, unittest.TestCase)) or obj.__module__ != mod.__name__:
            continue
        if any(issubclass(obj, m) for m in adapted_mixins):
            plan.dropped[name] = "stock concrete class of an adapted mixin (its Multiloop... twin runs)"
            continue
        if name in spec.drop:
            plan.dropped[name] = spec.drop[name]
            continue
        for test_name in loader.getTestCaseNames(obj):
            if spec.scope in enabled:
                candidates.append((obj, test_name, spec.scope))
            else:
                plan.out_of_scope.append(f"{modname}.{name}.{test_name} [{spec.scope}]")

    applicable = [e for e in exclusions if e.applies(backend)]
    for cls, name, prim in candidates:
        test = cls(name)
        tid = short_id(test.id())
        if pattern and not fnmatch.fnmatchcase(tid, pattern):
            continue
        hit = next((e for e in applicable if e.matches(tid)), None)
        if hit is not None:
            plan.excluded.append({"id": tid, "reason": hit.reason})
            continue
        plan.scope_of[tid] = prim
        plan.tests.append(test)
    return plan


# ---------------------------------------------------------------------------------------------- running
def excerpt(text: str) -> str:
    lines = text.rstrip().splitlines()
    if len(lines) > EXCERPT_LINES:
        lines = ["..."] + lines[-EXCERPT_LINES:]
    return "\n".join(lines)


class Recorder(unittest.TestResult):
    """Per-test outcome, and whether the test made a multiloop loop (and which stock loops)."""

    def __init__(self, census: Census, watchdog: Watchdog, verbose: bool = False) -> None:
        super().__init__()
        self.census = census
        self.watchdog = watchdog
        self.verbose = verbose
        self.records: dict[str, dict] = {}
        self._mark: tuple[int, collections.Counter[str]] = (0, collections.Counter())
        self._t0 = 0.0
        self._support: Any = importlib.import_module("test.support")

    def _rec(self, test) -> dict:
        tid = short_id(test.id())
        return self.records.setdefault(tid, {"outcome": "passed", "excerpt": ""})

    def _fail(self, test, kind: str, err) -> None:
        rec = self._rec(test)
        if rec["outcome"] not in ("failed", "error"):
            rec["outcome"] = kind
        text = err if isinstance(err, str) else self._exc_info_to_string(err, test)  # type: ignore[attr-defined]
        rec["excerpt"] = (rec["excerpt"] + "\n" if rec["excerpt"] else "") + excerpt(text)

    def startTest(self, test) -> None:
        super().startTest(test)
        self._mark = self.census.snapshot()
        self._t0 = time.monotonic()
        self._rec(test)
        self.watchdog.arm(short_id(test.id()), self)
        if self.verbose:
            print(f"{short_id(test.id())} ...", end=" ", file=sys.stderr, flush=True)

    def stopTest(self, test) -> None:
        self.watchdog.disarm()
        rec = self._rec(test)
        n0, stock0 = self._mark
        rec["multiloop_loops"] = self.census.multiloop - n0
        stock = self.census.stock - stock0
        rec["stock_loops"] = dict(stock)
        rec["seconds"] = round(time.monotonic() - self._t0, 3)
        if getattr(self._support, "environment_altered", False):
            rec["environment_altered"] = True
            self._support.environment_altered = False
        if self.verbose:
            print(rec["outcome"], f"({rec['seconds']}s, multiloop loops: {rec['multiloop_loops']})",
                  file=sys.stderr, flush=True)
        super().stopTest(test)

    def addError(self, test, err) -> None:
        super().addError(test, err)
        self._fail(test, "error", err)

    def addFailure(self, test, err) -> None:
        super().addFailure(test, err)
        self._fail(test, "failed", err)

    def addSubTest(self, test, subtest, err) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "failed" if issubclass(err[0], test.failureException) else "error"
            self._fail(test, kind, f"subtest {subtest._subDescription()}:\n"
                                   + self._exc_info_to_string(err, test))  # type: ignore[attr-defined]

    def addSkip(self, test, reason) -> None:
        super().addSkip(test, reason)
        rec = self._rec(test)
        rec["outcome"] = "skipped"
        rec["excerpt"] = reason

    def addExpectedFailure(self, test, err) -> None:
        super().addExpectedFailure(test, err)
        self._rec(test)["outcome"] = "expected_failure"

    def addUnexpectedSuccess(self, test) -> None:
        super().addUnexpectedSuccess(test)
        self._fail(test, "failed", "unexpected success of a test marked expectedFailure")


class Watchdog:
    """A test that runs longer than ``limit`` seconds is reported as hung (with every thread's stack on
    stderr) and the process exits after writing what it has: one hang must not hide every other result."""

    def __init__(self, limit: float, on_hang) -> None:
        self.limit = limit
        self.on_hang = on_hang
        self._cond = threading.Condition()
        self._current: tuple[str, object, float] | None = None
        thread = threading.Thread(target=self._watch, name="conformance-watchdog", daemon=True)
        thread.start()

    def arm(self, test_id: str, recorder) -> None:
        with self._cond:
            self._current = (test_id, recorder, time.monotonic() + self.limit)
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._current = None

    def _watch(self) -> None:
        while True:
            with self._cond:
                while self._current is None:
                    self._cond.wait()
                test_id, recorder, deadline = self._current
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
            print(f"\n!!! {test_id} still running after {self.limit}s: dumping stacks and exiting",
                  file=sys.stderr, flush=True)
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            self.on_hang(test_id, recorder)
            os._exit(3)


def summarize(modname: str, plan: Plan, recorder: Recorder, census_before: int, census_after: int,
              seconds: float) -> dict:
    spec = MODULES[modname]
    ids = [short_id(t.id()) for t in plan.tests]
    extra = [tid for tid in recorder.records if tid not in set(ids)]  # class/module fixture errors
    counts: collections.Counter[str] = collections.Counter()
    failures = []
    stock_by_class: collections.Counter[str] = collections.Counter()
    stock_selector_tests = []
    altered = []
    by_scope: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for tid in ids + extra:
        rec = recorder.records.get(tid)
        if rec is None:
            continue  # never started (only after a hang)
        outcome = rec["outcome"]
        exercised = rec.get("multiloop_loops", 0) > 0
        counts[outcome] += 1
        scope = plan.scope_of.get(tid, "core")
        by_scope[scope][outcome] += 1
        if outcome == "passed" and exercised:
            counts["passed_exercised"] += 1
            by_scope[scope]["passed_exercised"] += 1
        for cls_name in rec.get("stock_loops", {}):
            stock_by_class[cls_name] += 1
            if cls_name not in ("TestLoop", "BaseEventLoop"):
                stock_selector_tests.append(tid)
        if rec.get("environment_altered"):
            altered.append(tid)
        if outcome in ("failed", "error"):
            failures.append({"id": tid, "kind": outcome, "excerpt": rec["excerpt"]})
    problems: list[str] = []  # make the run fail (a hang)
    notes = []
    made = census_after - census_before
    if spec.expect_loops and plan.tests and made == 0:
        # Not a harness failure (install_multiloop_policy checked the policy makes multiloop loops): on
        # this Python the module's tests only use fake or mocked stock loops. Said loudly in the report.
        notes.append(f"no test of {modname} made a multiloop loop on this Python: its tests only use stock "
                     f"fake/mocked loops ({', '.join(sorted(stock_by_class)) or 'none'})")
    not_started = [tid for tid in ids if tid not in recorder.records]
    return {
        "module": modname,
        "scope": spec.scope,
        "run": sum(counts[k] for k in ("passed", "failed", "error", "skipped", "expected_failure")),
        "passed": counts["passed"],
        "passed_exercised": counts["passed_exercised"],
        "failed": counts["failed"],
        "errors": counts["error"],
        "skipped": counts["skipped"],
        "expected_failures": counts["expected_failure"],
        "excluded": len(plan.excluded),
        "not_started": len(not_started),
        "out_of_scope": len(plan.out_of_scope),
        "multiloop_loops_created": made,
        "by_scope": {k: dict(v) for k, v in sorted(by_scope.items())},
        "tests_with_stock_loops": dict(stock_by_class),
        "tests_with_stock_selector_loops": stock_selector_tests,
        "environment_altered": altered,
        "failures": failures,
        "excluded_ids": plan.excluded,
        "dropped_classes": plan.dropped,
        "problems": problems,
        "notes": notes,
        "seconds": round(seconds, 2),
    }


def run(backend: str, modules: list[str], scopes: tuple[str, ...], json_path: str | None,
        pattern: str | None, per_test_timeout: float, verbose: bool) -> dict:
    import multiloop

    names = [b.name for b in multiloop.backends() if b.available]
    if backend not in names:
        raise SystemExit(f"backend {backend!r} is not available here (available: {', '.join(names)})")
    census = Census()
    census.install()
    install_multiloop_policy(backend)
    exclusions = load_exclusions()
    report: dict[str, Any] = {"python": sys.version.split()[0], "backend": backend, "scopes": list(scopes),
                              "modules": {}}

    def write() -> None:
        if json_path:
            tmp = json_path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=1)
            os.replace(tmp, json_path)

    state: dict = {}

    def on_hang(test_id: str, recorder: Recorder) -> None:
        rec = recorder.records.setdefault(test_id, {})
        rec.update(outcome="error", excerpt=f"hung: still running after {per_test_timeout}s "
                                             f"(stacks on the runner's stderr)")
        report["modules"][state["module"]] = summarize(
            state["module"], state["plan"], recorder, state["before"], census.multiloop,
            time.monotonic() - state["t0"])
        report["modules"][state["module"]]["problems"].append(f"{test_id} hung; later tests not run")
        write()

    watchdog = Watchdog(per_test_timeout, on_hang)
    for modname in modules:
        if modname not in MODULES:
            raise SystemExit(f"{modname} is not in the scope table (conformance_scope.MODULES)")
        if importlib.util.find_spec(f"{PACKAGE}.{modname}") is None:
            report["modules"][modname] = {"module": modname, "missing": True}
            continue
        plan = plan_module(modname, backend, scopes, exclusions, pattern)
        recorder = Recorder(census, watchdog, verbose)
        state.update(module=modname, plan=plan, before=census.multiloop, t0=time.monotonic())
        unittest.TestSuite(plan.tests).run(recorder)
        report["modules"][modname] = summarize(modname, plan, recorder, state["before"], census.multiloop,
                                               time.monotonic() - state["t0"])
        write()
    return report


def print_report(report: dict) -> None:
    print(f"CPython {report['python']} test.test_asyncio on multiloop backend {report['backend']} "
          f"(scopes: {','.join(report['scopes'])})")
    for mod, s in report["modules"].items():
        if s.get("missing"):
            print(f"  {mod}: not in this Python")
            continue
        print(f"  {mod}: run {s['run']}, passed {s['passed']} (exercised multiloop {s['passed_exercised']}), "
              f"failed {s['failed']}, errors {s['errors']}, skipped {s['skipped']}, excluded {s['excluded']}, "
              f"multiloop loops {s['multiloop_loops_created']}, {s['seconds']}s")
        for f in s["failures"]:
            print(f"    {f['kind'].upper()}: {f['id']}")
            for line in f["excerpt"].splitlines():
                print(f"        {line}")
        for p in s["problems"]:
            print(f"    PROBLEM: {p}")
        for n in s.get("notes", ()):
            print(f"    note: {n}")


def list_plan(backend: str, modules: list[str], scopes: tuple[str, ...]) -> None:
    import multiloop  # noqa: F401  (fail early if not installed)

    exclusions = load_exclusions()
    for modname in modules:
        if importlib.util.find_spec(f"{PACKAGE}.{modname}") is None:
            print(f"# {modname}: not in this Python")
            continue
        plan = plan_module(modname, backend, scopes, exclusions)
        print(f"# {modname}: {len(plan.tests)} to run, {len(plan.excluded)} excluded, "
              f"{len(plan.out_of_scope)} out of scope")
        for t in plan.tests:
            tid = short_id(t.id())
            print(f"run      [{plan.scope_of[tid]}] {tid}")
        for e in plan.excluded:
            print(f"excluded {e['id']}  -- {e['reason']}")
        for tid in plan.out_of_scope:
            print(f"later    {tid}")
        for cls, why in plan.dropped.items():
            print(f"dropped  {modname}.{cls}  -- {why}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", required=True)
    p.add_argument("--module", action="append", required=True,
                   help="test.test_asyncio module name (repeatable, or comma-separated)")
    p.add_argument("--scopes", default=os.environ.get("MULTILOOP_CONFORMANCE", ""),
                   help="core,net,unix or all (default: $MULTILOOP_CONFORMANCE, else core)")
    p.add_argument("--json", help="write the summary here")
    p.add_argument("-k", "--pattern", help="only test ids matching this glob (e.g. '*test_call_soon*')")
    p.add_argument("--per-test-timeout", type=float,
                   default=float(os.environ.get("MULTILOOP_CONFORMANCE_TEST_TIMEOUT", "90")))
    p.add_argument("--list", action="store_true", help="print what would run, excluded, later, dropped")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    modules = [m.strip() for arg in args.module for m in arg.split(",") if m.strip()]
    scopes = parse_scopes(args.scopes)
    if args.list:
        list_plan(args.backend, modules, scopes)
        return 0
    restore_ctrl_c()  # CPython's Ctrl-C tests (test_runners' test_interrupt_*) need Python's own handler
    report = run(args.backend, modules, scopes, args.json, args.pattern, args.per_test_timeout, args.verbose)
    print_report(report)
    bad = any(s.get("failed") or s.get("errors") or s.get("problems") for s in report["modules"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
