"""``python -m multiloop check-backend``: passes for the built-in backends and the example plugin (installed
through its entry point), fails -- naming the problem -- for backends that are subtly wrong, and works from an
installed, non-editable copy of multiloop.

The kit's self-tests (marked ``kit_selftest``: the broken backends, the installed example plugin) exercise the
kit's own logic, which is the same on every interpreter, and cost three minutes a run (a wheel build, a kit run
per broken backend): CI runs them once, in tox's ``kit`` env. So does the quick kit on each built-in backend
(marked too): what it runs -- the quick behaviour checks and CPython's test_events -- every Python's env runs
already, in-process (``tests/test_kit_checks.py``) and in the conformance suite; what it adds is the kit's
command line end to end, which is the kit's logic again (about 90 s of every env).

The broken backends are in ``tests/kit_backends/multiloop_broken_backends.py``, loaded with ``--plugin``. Each
kit run is a subprocess, as a backend author would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BROKEN_DIR = os.path.join(HERE, "kit_backends")
EXAMPLE = os.path.join(ROOT, "examples", "backend-plugin")

sys.path.insert(0, BROKEN_DIR)
from multiloop_broken_backends import BROKEN  # noqa: E402

sys.path.remove(BROKEN_DIR)


def kit(*args: str, pythonpath: tuple[str, ...] | list[str] = (), cwd: str | None = None,
        timeout: float = 600) -> tuple[int, dict | None, str]:
    """Run check-backend; (exit status, the JSON report or None, the printed output). ``cwd``: where it runs
    (``python -m`` puts the working directory first on sys.path)."""
    import tempfile

    fd, report = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*pythonpath, os.environ.get("PYTHONPATH", "")]))
    env.pop("MULTILOOP_BACKEND", None)
    try:
        proc = subprocess.run([sys.executable, "-m", "multiloop", "check-backend", *args, "--json", report],
                              env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
        try:
            with open(report, encoding="utf-8") as f:
                doc = json.load(f)
        except ValueError:
            doc = None
    finally:
        os.unlink(report)
    return proc.returncode, doc, proc.stdout + proc.stderr


def failed_checks(doc: dict) -> dict[str, str]:
    return {o["name"]: o["message"] for o in doc["checks"] if o["outcome"] in ("failed", "error")}


@pytest.mark.kit_selftest
def test_builtin_backend_passes_the_quick_kit(backend):
    status, doc, out = kit(backend, "--quick")
    assert status == 0, out
    assert doc["verdict"] == "pass" and not doc["problems"]
    assert doc["check_counts"].get("passed", 0) >= 10
    assert f"VERDICT: PASS: backend {backend!r}" in out
    if doc["cpython"]:
        events = doc["cpython"]["test_events"]
        assert events["passed"] > 50 and not events["failed"] and not events["errors"]


@pytest.mark.kit_selftest
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_kit_catches_a_subtly_wrong_backend_and_names_the_problem(name):
    _, must_fail, phrase = BROKEN[name]
    control = "poller_statistics_are_cheap_counters"  # passes for all of them: the verdict is specific
    checks = ",".join(sorted(must_fail | {control}))
    status, doc, out = kit(name, "--plugin", "multiloop_broken_backends", "--checks", checks, "--cpython", "none",
                           "--timeout", "20", pythonpath=[BROKEN_DIR])
    assert status == 1, out
    assert doc["verdict"] == "fail"
    failed = failed_checks(doc)
    assert set(failed) == must_fail, out
    assert all(phrase in message for message in failed.values()), failed
    assert f"VERDICT: FAIL: backend {name!r}" in out
    for check in must_fail:
        assert f"check {check}:" in out  # the verdict names each problem


@pytest.mark.kit_selftest
def test_a_hanging_backend_fails_the_check_it_hung_in_and_the_rest_still_run():
    status, doc, out = kit("broken_hangs", "--plugin", "multiloop_broken_backends", "--cpython", "none",
                           "--checks", "poller_statistics_are_cheap_counters,timer_wakes_a_loop_blocked_in_the_backend,"
                                       "stats_include_the_backend_counters", "--timeout", "5",
                           pythonpath=[BROKEN_DIR])
    assert status == 1, out
    outcomes = {o["name"]: o["outcome"] for o in doc["checks"]}
    assert outcomes == {"poller_statistics_are_cheap_counters": "passed",
                        "timer_wakes_a_loop_blocked_in_the_backend": "failed",
                        "stats_include_the_backend_counters": "passed"}, out
    assert "hung" in failed_checks(doc)["timer_wakes_a_loop_blocked_in_the_backend"]


def test_an_unknown_backend_cannot_be_checked_and_says_what_is_known():
    status, doc, out = kit("no_such_backend", "--quick")
    assert status == 2 and doc is None
    assert "unknown backend 'no_such_backend'" in out and "epoll" in out and "--plugin" in out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """multiloop (non-editable, from a wheel) and the example plugin, installed into a private directory."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
                    "--target", str(target), ROOT, EXAMPLE], check=True, timeout=300)
    return str(target)


@pytest.mark.kit_selftest
def test_the_example_plugin_is_found_through_its_entry_point(installed):
    code = ("import json, multiloop; print(json.dumps({b.name: [b.available, b.origin] "
            "for b in multiloop.backends()}))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=installed),
                         capture_output=True, text=True, timeout=60, cwd=installed)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["selectors"] == [True, "multiloop-example-selectors 0.1.0"]


@pytest.mark.kit_selftest
def test_the_example_plugin_passes_the_kit_from_installed_copies(installed):
    code = "import multiloop, multiloop_selectors; print(multiloop.__file__); print(multiloop_selectors.__file__)"
    where = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=installed),
                           capture_output=True, text=True, timeout=60, cwd=installed).stdout.split()
    assert where and all(path.startswith(installed) for path in where), where  # not this checkout
    status, doc, out = kit("selectors", "--quick", pythonpath=[installed], cwd=installed)
    assert status == 0, out
    assert doc["verdict"] == "pass"
    if doc["cpython"]:  # the conformance runner found its exclusions.txt in the installed package
        assert doc["cpython"]["test_events"]["excluded"] >= 1
