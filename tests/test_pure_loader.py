"""The pure-Python build's loader (multiloop/_pure_loader.py): what it folds, that folding changes no result, that
the hot-path modules really are loaded folded in pure mode, and its cache.

Folding must be exact: each case below runs the same source folded and unfolded (with ``cython.compiled``
False, as in a pure process) and compares what the functions return, for every input.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import multiloop
from multiloop import _pure_loader, compiled
from multiloop._pure_loader import FoldingLoader, fold, fold_source

SHIM = types.SimpleNamespace(compiled=False, declare=lambda _type, value: value, bint=bool)

CASES = textwrap.dedent("""
    _FAST = cython.declare(cython.bint, cython.compiled and undefined_c_function())
    _DERIVED = cython.declare(cython.bint, _FAST and undefined_c_function())
    _NOT_DERIVED = not _DERIVED
    PLAIN = False  # no folded constant in it: a setting that may be changed at run time, never folded

    def branch(x):
        if cython.compiled:
            return undefined_c_function(x)
        elif _FAST and x:
            return "fast"
        else:
            return ("pure", x)

    def conditional(x):
        return undefined_c_function(x) if cython.compiled else len(x)

    def and_keeps_value(x):
        return not cython.compiled and x

    def or_keeps_value(x):
        return cython.compiled or x

    def chain(x, y):
        return _NOT_DERIVED and x and y

    def only_dead_branch(x):
        if _FAST:
            x = undefined_c_function()
        return x

    def plain_flag(x):
        return x if PLAIN else -x if isinstance(x, int) else x
""")


def load(source: str, folded: bool) -> dict:
    code = fold_source(source, "<case>") if folded else compile(source, "<case>", "exec")
    namespace = {"cython": SHIM}
    exec(code, namespace)
    return namespace


def names_in(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= names_in(const)
    return names


def test_folded_code_returns_what_the_source_does() -> None:
    plain, folded = load(CASES, False), load(CASES, True)
    inputs = [0, 1, "", "ab", [], [1], None, True]
    for name in ("branch", "conditional", "and_keeps_value", "or_keeps_value", "only_dead_branch", "plain_flag"):
        for x in inputs:
            try:
                expected = plain[name](x)
            except TypeError as exc:
                with pytest.raises(TypeError, match=str(exc)):
                    folded[name](x)
                continue
            assert folded[name](x) == expected, (name, x)
    for x, y in itertools.product(inputs, repeat=2):
        assert folded["chain"](x, y) == plain["chain"](x, y)
    for flag in ("_FAST", "_DERIVED", "_NOT_DERIVED", "PLAIN"):
        assert folded[flag] == plain[flag]  # the module attributes are still there, with their values


def test_what_is_folded_and_what_is_not() -> None:
    code = fold_source(CASES, "<case>")
    functions = {c.co_name: c for c in code.co_consts if isinstance(c, types.CodeType)}
    for name in ("branch", "conditional", "and_keeps_value", "or_keeps_value", "chain", "only_dead_branch"):
        left = names_in(functions[name]) & {"cython", "compiled", "_FAST", "_DERIVED", "_NOT_DERIVED",
                                            "undefined_c_function"}
        assert not left, f"{name} still looks up {left}"
    # A flag that no folded constant went into stays a global read at run time (monkeypatching it works).
    assert "PLAIN" in functions["plain_flag"].co_names


@pytest.mark.parametrize("rebinding", [
    "def set_it():\n    global _FAST\n    _FAST = True\n",
    "def shadow(_FAST):\n    return _FAST\n",
    "_FAST = True\n",
    "for _FAST in (1,):\n    pass\n",
    "import os as _FAST\n",
    "from os.path import *\n",
])
def test_a_constant_bound_anywhere_else_is_not_folded(rebinding: str) -> None:
    source = "_FAST = cython.declare(cython.bint, cython.compiled and f())\n" + rebinding + \
        "def reader():\n    return _FAST\n"
    code = fold_source(source, "<case>")
    reader = next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == "reader")
    assert "_FAST" in reader.co_names


def test_line_numbers_are_kept() -> None:
    tree = fold(ast.parse(CASES))
    original = {n.name: n.lineno for n in ast.parse(CASES).body if isinstance(n, ast.FunctionDef)}
    assert {n.name: n.lineno for n in tree.body if isinstance(n, ast.FunctionDef)} == original
    folded = load(CASES, True)
    with pytest.raises(TypeError) as info:
        folded["conditional"](5)  # len(5)
    line = info.traceback[-1].lineno + 1  # pytest's traceback entries count from 0
    assert CASES.splitlines()[line - 1].strip().startswith("return undefined_c_function(x) if cython.compiled")


PURE_PROBE = textwrap.dedent("""
    import json, types
    import multiloop
    from multiloop import compiled
    from multiloop._pure_loader import FoldingLoader

    def names(code):
        found = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= names(const)
        return found

    report = {}
    for name in compiled.EXTENSION_MODULES:
        module = __import__(name, fromlist=["_"])
        loader = module.__spec__.loader
        report[name] = {"folding": isinstance(loader, FoldingLoader), "file": module.__file__,
                        "looks_up_compiled": "compiled" in names(loader.get_code(name))}
    import multiloop.core as core
    # What actually runs (not only what the loader hands out): the pass and call_soon.
    live = names(core.LoopCore.call_soon.__code__) | names(core.LoopCore._process.__code__)
    report["core"] = [core._FAST, core._FAST_DEQUE, core._FAST_TS, sorted({"compiled", "_FAST", "_FAST_DEQUE"} & live),
                      # the pass inlined into run_forever (multiloop._pure_inliner): no call left to make
                      sorted({"_run_once", "_compute_timeout", "_process"} & names(core.LoopCore.run_forever.__code__))]
    print(json.dumps(report))
""")


def test_pure_mode_loads_the_hot_path_folded() -> None:
    env = {k: v for k, v in os.environ.items() if k != compiled.ENV} | {compiled.ENV: "1"}
    proc = subprocess.run([sys.executable, "-c", PURE_PROBE], capture_output=True, text=True, env=env, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(multiloop.__file__)))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report.pop("core") == [False, False, False, [], []]
    assert set(report) == set(compiled.EXTENSION_MODULES)
    for name, entry in report.items():
        assert entry["folding"], f"{name} was not loaded by the folding loader"
        assert entry["file"].endswith(".py"), entry
        assert not entry["looks_up_compiled"], f"{name} still tests cython.compiled at run time"


def test_compiled_mode_does_not_use_it() -> None:
    if not compiled.ACTIVE:
        pytest.skip(f"this process runs the pure build ({compiled.REASON})")
    import multiloop.core as core
    assert not isinstance(core.__spec__.loader, FoldingLoader)


# -- the cache ---------------------------------------------------------------------------------------------------

MODULE = "_FAST = cython.declare(cython.bint, cython.compiled and f())\nVALUE = {value}\nFOLDED = not _FAST\n"


def import_file(path: Path, name: str = "folded_probe") -> types.ModuleType:
    loader = FoldingLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.cython = SHIM  # type: ignore[attr-defined]
    loader.exec_module(module)
    return module


@pytest.fixture
def writable_bytecode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)


def cache_of(path: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(path), optimization="mlpure"))


@pytest.mark.usefixtures("writable_bytecode")
def test_cache_is_written_used_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "probe.py"
    path.write_text(MODULE.format(value=1))
    assert import_file(path).VALUE == 1
    cache = cache_of(path)
    assert cache.exists()
    # A second import is served from the cache: nothing is compiled.
    compiles = []
    real = _pure_loader.fold_source
    monkeypatch.setattr(_pure_loader, "fold_source", lambda *a: compiles.append(a) or real(*a))
    assert import_file(path).VALUE == 1 and compiles == []
    # The source changes (same size, same second: only the content tells): compiled again.
    path.write_text(MODULE.format(value=2))
    assert import_file(path).VALUE == 2 and len(compiles) == 1
    # A damaged cache file is replaced, not trusted.
    data = cache.read_bytes()
    cache.write_bytes(data[:-20])
    assert import_file(path).VALUE == 2 and len(compiles) == 2
    assert cache.read_bytes() == data
    # The ordinary .pyc (pip byte-compiles installs) is never what is loaded.
    assert cache.name.endswith(".opt-mlpure.pyc")
    # The rewriting code changes (an upgrade of multiloop that left this module as it was): compiled again.
    monkeypatch.setattr(_pure_loader, "_TRANSFORM_KEY", b"another folder or inliner")
    assert import_file(path).VALUE == 2 and len(compiles) == 3


def test_the_cache_key_covers_the_folder_and_the_inliner() -> None:
    import hashlib

    from multiloop import _pure_inliner
    expected = hashlib.sha256(Path(_pure_loader.__file__).read_bytes() + Path(_pure_inliner.__file__).read_bytes())
    assert _pure_loader._transform_key() == expected.digest()


def test_no_cache_written_when_bytecode_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    path = tmp_path / "probe.py"
    path.write_text(MODULE.format(value=3))
    assert import_file(path).VALUE == 3
    assert not cache_of(path).exists()


@pytest.mark.usefixtures("writable_bytecode")
@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root ignores permissions")
def test_read_only_install_still_imports(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text(MODULE.format(value=4))
    tmp_path.chmod(0o555)
    try:
        assert import_file(path).VALUE == 4
        assert not cache_of(path).exists()
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.usefixtures("writable_bytecode")
def test_unwritable_cache_still_imports(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text(MODULE.format(value=5))
    (tmp_path / "__pycache__").write_text("a file where the cache directory would be")
    module = import_file(path)
    assert module.VALUE == 5 and module.FOLDED is True
