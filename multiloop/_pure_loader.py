"""How the pure-Python build imports the hot-path modules: their own sources, with Cython's compile-time
constants folded.

Facts that shape this module:
- The hot-path modules (:data:`multiloop.compiled.EXTENSION_MODULES`) are written in Cython's pure-Python mode:
  ``if cython.compiled:`` picks the C path. Cython evaluates that test when it compiles, so the compiled module
  has neither the test nor the dead branch. Run as plain Python, each test is a global lookup, an attribute
  lookup and a jump, executed every time. The loop pass makes about twenty of them per iteration, and module
  flags derived from it (``_FAST = cython.declare(cython.bint, cython.compiled and ...)``) add more.
  Measured with callgrind on 3.14 (fd ping-pong with 100 idle fds), folding them removes 6.7% of the pure
  build's instructions per round trip (34,959 -> 32,628; stock asyncio 34,719). On call_soon with 1,000 chains
  it removes 2.7%.
- The pure build must run the same source as the compiled one; a second, hand-folded copy would drift.
  Folding is exact: in this process ``cython.compiled`` is False (the shim, or Cython's own module when it is
  installed but the module is not compiled), so the folded code does what the unfolded code would.
- pip byte-compiles installed ``.py`` files. A loader that only overrode ``source_to_code`` would be handed
  those unfolded ``.pyc`` files. So this loader keeps its own cache file beside them (``opt-mlpure``), keyed by
  the interpreter's magic number, this folder's version, the SHA-256 of the rewriting code (this module and
  the inliner) and the SHA-256 of the source. It writes the file
  atomically, and silently skips writing where it cannot (read-only installs, ``PYTHONDONTWRITEBYTECODE``).

Then the methods the module lists in ``_INLINE_WHEN_PURE`` are inlined at their call sites
(:mod:`multiloop._pure_inliner` says when and how).

What is folded (nothing else is touched, and line numbers stay as they are, so tracebacks and coverage still
point at the source):
- ``cython.compiled`` -> ``False``.
- A module-level ``NAME = <expr>`` or ``NAME = cython.declare(<type>, <expr>)``: if ``<expr>`` used a folded
  constant and itself folds to a bool, and ``NAME`` is bound nowhere else in the module (no other assignment,
  parameter, import, ``global`` or ``del``, and no ``import *``), then loads of ``NAME`` fold to that bool.
  The assignment stays, so the module attribute still exists.
- ``not`` of a constant; ``and``/``or`` chains with a leading constant (only the leading operands can be folded
  without changing what the expression evaluates or returns); ``x if <constant> else y``;
  ``if <constant>: ... else: ...`` (the dead branch goes; an empty branch becomes ``pass``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
from typing import Any

from . import _pure_inliner

#: Bump when the cache file's layout changes. A change to the folding or the inlining needs no bump: the key
#: also holds the hash of this module's and the inliner's own sources (see _transform_key).
FOLDER_VERSION = b"mlpure-2"
_CACHE_OPTIMIZATION = "mlpure"


def _is_cython_compiled(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "compiled" and isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Name) and node.value.id == "cython")


def _bound_names(tree: ast.AST) -> dict[str, int]:
    """How many times each name is bound anywhere in ``tree`` (assignments, parameters, imports, defs, ...);
    names declared ``global``/``nonlocal`` count as bound twice, so they are never folded."""
    counts: dict[str, int] = {}

    def bind(name: str, times: int = 1) -> None:
        counts[name] = counts.get(name, 0) + times

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bind(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bind(node.name)
        elif isinstance(node, ast.arg):
            bind(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bind(alias.asname or alias.name.split(".")[0])
                if alias.name == "*":  # could bind any name: fold none
                    counts["*"] = 2
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                bind(name, 2)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bind(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bind(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bind(node.rest)
    return counts


class _Folder(ast.NodeTransformer):
    """Folds ``cython.compiled``, the module's derived constants, and the tests that use them."""

    def __init__(self) -> None:
        self.constants: dict[str, bool] = {}
        self.folds = 0  # how many replacements so far: tells a derived constant from a plain one

    def _constant(self, value: Any, like: ast.AST) -> ast.Constant:
        self.folds += 1
        return ast.copy_location(ast.Constant(value), like)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if _is_cython_compiled(node):
            return self._constant(False, node)
        return self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.constants:
            return self._constant(self.constants[node.id], node)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and isinstance(node.operand, ast.Constant):
            return self._constant(not node.operand.value, node)
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        values = list(node.values)
        # "a and b" is a if a is falsy, else b ("or": a if a is truthy). A leading constant decides alone or drops out.
        decides = (lambda v: not v) if isinstance(node.op, ast.And) else bool
        while values and isinstance(values[0], ast.Constant):
            if decides(values[0].value) or len(values) == 1:
                return self._constant(values[0].value, node)
            values.pop(0)
            self.folds += 1
        if len(values) == 1:
            return values[0]
        node.values = values
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.test, ast.Constant):
            self.folds += 1
            return node.body if node.test.value else node.orelse
        return node

    def visit_If(self, node: ast.If) -> Any:
        self.generic_visit(node)
        if isinstance(node.test, ast.Constant):
            self.folds += 1
            kept = node.body if node.test.value else node.orelse
            return kept or ast.copy_location(ast.Pass(), node)
        return node


def fold(tree: ast.Module) -> ast.Module:
    """Fold ``tree`` (a module's AST) in place and return it; see the module docstring for what is folded."""
    bound = _bound_names(tree)
    folder = _Folder()
    body: list[ast.stmt] = []
    for stmt in tree.body:
        before = folder.folds
        result = folder.visit(stmt)
        for new in result if isinstance(result, list) else [result]:
            body.append(new)
            if not (isinstance(new, ast.Assign) and len(new.targets) == 1 and isinstance(new.targets[0], ast.Name)):
                continue
            value = new.value
            if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "declare"
                    and isinstance(value.func.value, ast.Name) and value.func.value.id == "cython"
                    and len(value.args) == 2):
                value = value.args[1]
            name = new.targets[0].id
            if (folder.folds > before and isinstance(value, ast.Constant) and type(value.value) is bool
                    and bound.get(name) == 1 and "*" not in bound):
                folder.constants[name] = value.value
    tree.body = body
    return ast.fix_missing_locations(tree)


def fold_source(source: str | bytes, path: str) -> Any:
    """The code object of ``source`` (from file ``path``) with the compile-time constants folded, then the
    methods it lists in ``_INLINE_WHEN_PURE`` inlined (:mod:`multiloop._pure_inliner`)."""
    return compile(_pure_inliner.inline(fold(ast.parse(source, filename=path))), path, "exec", dont_inherit=True)


_TRANSFORM_KEY: bytes | None = None


def _transform_key() -> bytes:
    """SHA-256 of the sources that decide what a cached module contains (this module and the inliner), read once
    per process: an upgrade that changes how modules are rewritten, but not the modules themselves, must not be
    served the old rewrite. pip does not remove these cache files on upgrade (they are in no RECORD)."""
    global _TRANSFORM_KEY
    if _TRANSFORM_KEY is None:
        digest = hashlib.sha256()
        for module_file in (__file__, _pure_inliner.__file__):
            try:
                with open(module_file, "rb") as f:
                    digest.update(f.read())
            except (OSError, TypeError):  # no source file (a frozen or zip-only install): the version alone
                digest.update(b"?")
        _TRANSFORM_KEY = digest.digest()
    return _TRANSFORM_KEY


def _cache_file(path: str) -> str | None:
    try:
        return importlib.util.cache_from_source(path, optimization=_CACHE_OPTIMIZATION)
    except (NotImplementedError, ValueError):  # no cache tag on this implementation
        return None


class FoldingLoader(importlib.machinery.SourceFileLoader):
    """Loads a hot-path module from its ``.py`` file with the compile-time constants folded (cached)."""

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        source = self.get_data(path)
        header = importlib.util.MAGIC_NUMBER + FOLDER_VERSION + _transform_key() + hashlib.sha256(source).digest()
        cache = _cache_file(path)
        if cache is not None:
            try:
                with open(cache, "rb") as f:
                    data = f.read()
            except OSError:
                data = b""
            if data.startswith(header):
                try:
                    return marshal.loads(data[len(header):])
                except (EOFError, ValueError, TypeError):
                    pass  # a damaged cache file: compile again and replace it
        code = fold_source(source, path)
        if cache is not None and not sys.dont_write_bytecode:
            _write_atomically(cache, header + marshal.dumps(code))
        return code


def _write_atomically(path: str, data: bytes) -> None:
    """Best effort: a concurrent import writes the same bytes; a read-only install is simply not cached."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
