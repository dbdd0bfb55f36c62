"""CPython's own asyncio test suite (``test.test_asyncio``, from the interpreter running pytest) on every
multiloop backend under test: one test per (module, backend), each running the runner in a fresh
subprocess of the same interpreter. The runner, its scope table and exclusions ship inside the package
(``multiloop/kit/conformance/``), so ``python -m multiloop check-backend`` runs them from an installed copy.

Which modules and which of their tests: ``conformance_scope.py`` (scopes ``core`` = issue 2, ``net`` = issue 3,
``unix`` = issue 4; ``MULTILOOP_CONFORMANCE=core,net,unix`` or ``all``; default ``core,net,unix``). Exclusions, each
with its reason: ``exclusions.txt``. Backends: the ``backend`` and ``backends_selected`` fixtures of
``tests/conftest.py`` (``MULTILOOP_TEST_BACKENDS``); fixtures, not an import, since ``import conftest`` may find
another directory's.

The summary table (module x backend: passed / of them exercised multiloop / skipped / excluded / failed) is
printed at the end of the pytest run and written as JSON to ``$MULTILOOP_CONFORMANCE_REPORT``, by default
``.tox/conformance/report-py<X.Y>-<backends>.json`` in the repository (``.tox/`` is git-ignored; one file per
Python and backend set, so parallel tox environments do not overwrite each other).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time

import pytest

from multiloop.kit.conformance.conformance_scope import MODULES as SCOPE_TABLE
from multiloop.kit.conformance.conformance_scope import modules_in_scope, parse_scopes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNNER = "multiloop.kit.conformance.cpython_runner"
SCOPES = parse_scopes(os.environ.get("MULTILOOP_CONFORMANCE"))
# Seconds for one (module, backend) subprocess; test_tasks is the longest (~20-40 s on a busy machine).
TIMEOUT = float(os.environ.get("MULTILOOP_CONFORMANCE_TIMEOUT", "240"))
PYVER = f"{sys.version_info[0]}.{sys.version_info[1]}" + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else "")


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"test.test_asyncio.{module}") is not None
    except ImportError:  # no test package in this interpreter (some distributions strip it)
        return False


MODULES = [m for m in modules_in_scope(SCOPES) if _available(m)]


def fd_free_backends(selected: list[str]) -> set[str]:
    """Where the fd-free modules (``Module.fd_free``: tasks, futures, locks, ...) run: the first backend of the
    selection, and trio when selected. Those modules hand the loop no fd of their own, so they test the core,
    which is the same code under every poller; running them on select and poll as well repeated it (about a
    third of CI's conformance time). trio is the exception: it drives the core from ``trio.run`` instead of
    a poller, so the core's scheduling really runs differently there."""
    chosen = set(selected[:1])
    if "trio" in selected:
        chosen.add("trio")
    return chosen


def report_path() -> str:
    env = os.environ.get("MULTILOOP_CONFORMANCE_REPORT")
    if env:
        return env
    label = os.environ.get("MULTILOOP_TEST_BACKENDS", "").replace(",", "+").replace(" ", "") or "all"
    return os.path.join(ROOT, ".tox", "conformance", f"report-py{PYVER}-{label}.json")


class _Summary:
    """Collects one row per (module, backend); prints the table at the end and writes the JSON report."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, row: dict) -> None:
        self.rows.append(row)
        path = report_path()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        backends = sorted({r["backend"] for r in self.rows})
        doc = {"python": sys.version.split()[0], "scopes": list(SCOPES), "backends": backends,
               "rows": self.rows, "totals": self.totals()}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)

    def totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for row in self.rows:
            t = out.setdefault(row["backend"], {})
            for key in ("run", "passed", "passed_exercised", "skipped", "excluded", "failed", "errors"):
                t[key] = t.get(key, 0) + row.get(key, 0)
        return out

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.rows:
            return
        tr = terminalreporter
        tr.section(f"CPython {PYVER} test.test_asyncio on multiloop (scopes {','.join(SCOPES)})")
        tr.write_line(f"{'module':26} {'backend':8} {'passed':>7} {'exercised':>9} {'skipped':>7} "
                      f"{'excluded':>8} {'failed':>6} {'errors':>6} {'secs':>6}")
        for r in sorted(self.rows, key=lambda r: (r["module"], r["backend"])):
            tr.write_line(f"{r['module']:26} {r['backend']:8} {r.get('passed', 0):7} "
                          f"{r.get('passed_exercised', 0):9} {r.get('skipped', 0):7} {r.get('excluded', 0):8} "
                          f"{r.get('failed', 0):6} {r.get('errors', 0):6} {r.get('seconds', 0):6}")
        for backend, t in self.totals().items():
            tr.write_line(f"{'TOTAL':26} {backend:8} {t['passed']:7} {t['passed_exercised']:9} "
                          f"{t['skipped']:7} {t['excluded']:8} {t['failed']:6} {t['errors']:6}")
        tr.write_line(f"report: {report_path()}")


@pytest.fixture(scope="session")
def conformance_summary(pytestconfig) -> _Summary:
    name = "multiloop-cpython-conformance-summary"
    summary = pytestconfig.pluginmanager.get_plugin(name)
    if summary is None:
        summary = _Summary()
        pytestconfig.pluginmanager.register(summary, name)
    return summary


def _run_module(module: str, backend: str) -> tuple[dict | None, str]:
    fd, out = tempfile.mkstemp(prefix=f"conformance-{module}-{backend}-", suffix=".json")
    os.close(fd)
    # -P: the installed multiloop (e.g. the compiled wheel), not a checkout in the working directory.
    cmd = [sys.executable, "-P", "-m", RUNNER, "--backend", backend, "--module", module, "--scopes", ",".join(SCOPES),
           "--json", out]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)
        log = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        log = f"TIMEOUT after {TIMEOUT}s\n" + text(exc.stdout) + text(exc.stderr)
    try:
        with open(out, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = None
    finally:
        os.unlink(out)
    if data is None:
        return None, log
    return data["modules"].get(module), log


@pytest.mark.timeout(TIMEOUT + 60)
@pytest.mark.parametrize("module", MODULES)
def test_cpython_asyncio(module: str, backend: str, backends_selected: list[str],
                         conformance_summary: _Summary) -> None:
    run_on = fd_free_backends(backends_selected)
    if SCOPE_TABLE[module].fd_free and backend not in run_on:
        pytest.skip(f"{module} hands the loop no fd (the core's scheduling only): run on {sorted(run_on)} "
                    f"in this selection, not again on {backend}")
    t0 = time.monotonic()
    result, log = _run_module(module, backend)
    if result is None:
        conformance_summary.add({"module": module, "backend": backend, "errors": 1,
                                 "seconds": round(time.monotonic() - t0, 1)})
        pytest.fail(f"the conformance runner produced no result for {module} on {backend}:\n{log[-4000:]}",
                    pytrace=False)
    row = {k: v for k, v in result.items() if not isinstance(v, (list, dict))}
    row.update(backend=backend, failure_ids=[f["id"] for f in result["failures"]], notes=result["notes"])
    conformance_summary.add(row)
    lines = []
    for f in result["failures"]:
        lines.append(f"{f['kind'].upper()}: {f['id']}\n    " + f["excerpt"].replace("\n", "\n    "))
    lines += [f"PROBLEM: {p}" for p in result["problems"]]
    if result.get("not_started"):
        lines.append(f"{result['not_started']} tests never started; runner output tail:\n{log[-3000:]}")
    assert not lines, (f"CPython {module} on multiloop backend {backend}: {result['failed']} failed, "
                       f"{result['errors']} errors (of {result['run']} run)\n" + "\n".join(lines))
