"""The compiled hot path and the switch between it and the .py sources (multiloop.compiled).

Both modes must run the same code paths' results; the whole suite runs in each (CI: tox factor). Here: the
switch itself, both ways, in fresh processes, and the build checks that keep a stale or partial build from
being used.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import subprocess
import sys
import textwrap

import pytest

import multiloop
from multiloop import compiled

PROBE = textwrap.dedent("""
    import json, sys
    import multiloop
    status = multiloop.compiled.status()
    gil = getattr(sys, "_is_gil_enabled", lambda: None)()
    print(json.dumps(status | {"gil": gil}))
""")


def probe(**env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if k != compiled.ENV} | env
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=full, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(multiloop.__file__)))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def built_here() -> bool:
    ok, _, _ = compiled._check_build()
    return ok


def test_status_matches_what_was_imported():
    status = compiled.status()
    assert status["consistent"], status
    assert status["mode"] == ("compiled" if compiled.ACTIVE else "pure")
    assert set(status["modules"]) == set(compiled.EXTENSION_MODULES)


@pytest.mark.parametrize("value", ["1", "yes"])
def test_the_environment_variable_forces_the_sources_at_run_time(value):
    status = probe(MULTILOOP_NO_EXTENSIONS=value)
    assert status["mode"] == "pure" and status["consistent"]
    assert "MULTILOOP_NO_EXTENSIONS" in status["reason"]
    assert all(f.endswith(".py") for f in status["modules"].values()), status["modules"]


@pytest.mark.skipif(not built_here(), reason="no compiled build for this interpreter in this installation")
def test_without_the_variable_an_installed_build_is_used():
    for env in ({}, {"MULTILOOP_NO_EXTENSIONS": "0"}, {"MULTILOOP_NO_EXTENSIONS": ""}):
        status = probe(**env)
        assert status["mode"] == "compiled" and status["consistent"], (env, status)
        suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
        assert all(f.endswith(suffixes) for f in status["modules"].values()), status["modules"]


@pytest.mark.skipif(not hasattr(sys, "_is_gil_enabled"), reason="3.13+")
def test_importing_the_compiled_modules_keeps_the_gil_as_it_was():
    import sysconfig
    status = probe()
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        assert status["gil"] is False, status  # a module not declaring free-threading would re-enable it
    else:
        assert status["gil"] is True


def test_free_threaded_builds_still_reference_count_code_objects_deferred():
    # The compiled callback check reads a function's code object without taking a reference on free-threaded
    # builds (ml_code_flags in _fasthandles.pxd). That is safe only because such a build frees code objects
    # through the collector alone (deferred reference counting, which sys.getrefcount shows as a count near
    # 2**60): if a release changes that, this fails and ml_code_flags must take a reference again.
    import sysconfig
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        pytest.skip("free-threaded builds only")
    fresh = compile("x = 1", "<probe>", "exec")

    def function():
        pass

    for code in (fresh, function.__code__, fresh.replace(co_name="renamed")):
        assert sys.getrefcount(code) > 2 ** 50, f"{code!r}: reference count {sys.getrefcount(code)}"


# ------------------------------------------------------------------------------------------ build checks
def fake_build(tmp_path, monkeypatch, *, modules=compiled.EXTENSION_MODULES, so=True):
    """A package directory with sources, (fake) extension files and a stamp, and compiled.py pointed at it."""
    tag = importlib.machinery.EXTENSION_SUFFIXES[0]
    built = {}
    for name in compiled.EXTENSION_MODULES:
        src = tmp_path.joinpath(*name.split(".")[1:]).with_suffix(".py")
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(f"# {name}\n")
        ext = src.with_name(src.stem + tag)
        if so:
            ext.write_bytes(b"")
        if name in modules:
            built[name] = {"file": ext.name, "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest()}
    (tmp_path / compiled._stamp_name()).write_text(json.dumps({"cython": "3.x", "modules": built}))
    monkeypatch.setattr(compiled, "_PACKAGE_DIR", tmp_path)
    return tmp_path


def test_a_complete_fresh_build_is_usable(tmp_path, monkeypatch):
    fake_build(tmp_path, monkeypatch)
    ok, why, _ = compiled._check_build()
    assert ok and why == "compiled (Cython 3.x)"


def test_a_source_changed_since_it_was_compiled_makes_the_build_stale(tmp_path, monkeypatch):
    root = fake_build(tmp_path, monkeypatch)
    (root / "core.py").write_text("# edited\n")
    ok, why, _ = compiled._check_build()
    assert not ok and "multiloop.core is stale" in why


def test_a_partial_build_is_not_used(tmp_path, monkeypatch):
    fake_build(tmp_path, monkeypatch, modules=compiled.EXTENSION_MODULES[:-1])
    ok, why, _ = compiled._check_build()
    assert not ok and "was not compiled" in why


def test_a_missing_extension_file_is_not_used(tmp_path, monkeypatch):
    fake_build(tmp_path, monkeypatch, so=False)
    ok, why, _ = compiled._check_build()
    assert not ok and "is missing" in why


def test_no_build_at_all(tmp_path, monkeypatch):
    monkeypatch.setattr(compiled, "_PACKAGE_DIR", tmp_path)
    ok, why, _ = compiled._check_build()
    assert not ok and "no compiled modules were built for this interpreter" in why


def test_info_shows_the_hot_path():
    # From the directory holding the imported package, so the subprocess imports the same copy.
    where = os.path.dirname(os.path.dirname(multiloop.__file__))
    proc = subprocess.run([sys.executable, "-m", "multiloop", "info"], capture_output=True, text=True, timeout=60,
                          cwd=where)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].endswith(f"; hot path: {compiled.REASON}")
    proc = subprocess.run([sys.executable, "-m", "multiloop", "info", "--json"], capture_output=True, text=True,
                          timeout=60, cwd=where)
    assert json.loads(proc.stdout)["hot_path"]["mode"] == compiled.MODE


def test_the_pure_core_state_has_the_fields_core_pxd_declares_as_slots():
    """Plain Python, the scheduler state is a slotted base class (an instance dict with more than 30 keys makes
    every self._x a dict lookup); its names must be the compiled _CoreState's C fields."""
    import re
    from pathlib import Path

    pxd = (Path(multiloop.__file__).parent / "core.pxd").read_text()
    body = pxd[pxd.index("cdef class _CoreState("):]
    fields = re.findall(r"^\s+cdef public (?:\w+ )+(\w+)$", body, re.MULTILINE)
    assert len(fields) > 10
    code = textwrap.dedent("""
        import json, multiloop.core as core
        print(json.dumps(list(getattr(core._CoreState, "__slots__", ()))))
    """)
    env = {k: v for k, v in os.environ.items() if k != compiled.ENV} | {compiled.ENV: "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == fields
    loop = multiloop.new_loop()
    try:
        assert len(vars(loop)) <= 30  # the rest still fits the inline values
    finally:
        loop.close()
