"""The pure-Python build's second rewrite of the hot-path source: named methods inlined where they are called.

Facts that shape this module:
- One loop pass is four Python frames in the pure build (``run_forever`` -> ``_run_once`` ->
  ``_compute_timeout``, ``_process``), and a frame costs a few hundred instructions to push and pop (3.11+).
  Measured with callgrind on 3.14, an fd ping-pong (two passes per round trip) spent about 10% of its
  instructions on those calls. Compiled, they are C calls and cost next to nothing, so the source keeps them:
  small methods with one job each, which the trio bridge also calls one by one (``_CoreIteration``).
- Copying their bodies into the callers by hand would be a second copy to keep in step. Like the folding in
  :mod:`multiloop._pure_loader`, this is done to the AST when the pure build imports the module, from the one
  source, and only where the result provably does what the call did.

What is inlined: a module lists method names in a module-level ``_INLINE_WHEN_PURE = ("name", ...)``. Each
must be defined once, in one class, as ``def name(self, a, b)`` (positional parameters only, no defaults),
decorated by nothing but ``cython.*``, with no nested function, lambda, class, ``global``, ``nonlocal``,
``yield``, ``await``, and no ``return`` inside a loop. A call is inlined where it is a whole statement,
``self.name(x, y)`` or ``target = self.name(x, y)`` (``target`` a plain name), inside a method whose first
parameter is ``self``, with positional arguments only. The body replaces it: parameters and local names get
the prefix ``_inl_<name>_``; the arguments are assigned to the parameters first (each evaluated once, in order,
as a call would); a body with more than one ``return`` runs inside ``while True: ... break`` and each
``return v`` becomes ``target = v`` and ``break``. A method not eligible is left alone (``plan`` says why):
``tests/test_pure_loader.py`` checks that every name listed in ``multiloop.core`` is inlined.

What changes, and why that is acceptable: the inlined code runs in the caller's frame (a traceback through it
shows one frame fewer, with the method's own line numbers); its locals live until the caller overwrites or
returns (the pass clears the ones that could hold a user's object, as it did before); a subclass overriding
an inlined method would be bypassed (no class in the package overrides one, which the tests check).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator
from typing import Any

MARKER = "_INLINE_WHEN_PURE"
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_REFUSED = (ast.Global, ast.Nonlocal, ast.Yield, ast.YieldFrom, ast.Await) + _SCOPES


def _listed_names(tree: ast.Module) -> tuple[str, ...]:
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id == MARKER and isinstance(stmt.value, ast.Tuple)):
            return tuple(e.value for e in stmt.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
    return ()


def _is_cython_decorator(node: ast.expr) -> bool:
    while isinstance(node, (ast.Call, ast.Attribute)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return isinstance(node, ast.Name) and node.id == "cython"


def _params(func: ast.FunctionDef) -> list[ast.arg]:
    return func.args.posonlyargs + func.args.args


def _is_method(func: ast.FunctionDef) -> bool:
    params = _params(func)
    return bool(params) and params[0].arg == "self"


def _blocks(stmt: ast.stmt) -> Iterator[tuple[Any, str, bool]]:
    """The statement lists nested in ``stmt`` (none inside a nested scope), as (node holding it, field name,
    whether it is a loop's body): every walk below goes through here."""
    if isinstance(stmt, _SCOPES):
        return
    for field in ("body", "orelse", "finalbody"):
        inner = getattr(stmt, field, None)
        if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
            yield stmt, field, isinstance(stmt, _LOOPS) and field == "body"
    for item in getattr(stmt, "handlers", None) or getattr(stmt, "cases", None) or []:
        yield item, "body", False


def _map_statements(body: list[ast.stmt], replace: Callable[[ast.stmt], list[ast.stmt] | None]) -> list[ast.stmt]:
    """``body`` with every statement for which ``replace`` returns a list replaced by that list, in nested blocks
    too (changed in place); a block left empty gets ``pass``."""
    out: list[ast.stmt] = []
    for stmt in body:
        new = replace(stmt)
        if new is not None:
            out += new
            continue
        for node, field, _ in _blocks(stmt):
            setattr(node, field, _map_statements(getattr(node, field), replace) or [ast.Pass()])
        out.append(stmt)
    return out


def _returns_in_loops(body: list[ast.stmt], in_loop: bool = False) -> bool:
    for stmt in body:
        if isinstance(stmt, ast.Return) and in_loop:
            return True
        for node, field, loop_body in _blocks(stmt):
            if _returns_in_loops(getattr(node, field), in_loop or loop_body):
                return True
    return False


def _why_not(func: ast.FunctionDef) -> str | None:
    """Why ``func`` cannot be inlined, or None if it can."""
    a = func.args
    if not _is_method(func):
        return "its first parameter is not self"
    if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.kw_defaults:
        return "it takes more than plain positional parameters"
    if not all(_is_cython_decorator(d) for d in func.decorator_list):
        return "it has a decorator other than cython.*"
    for node in ast.walk(ast.Module(body=func.body, type_ignores=[])):
        if isinstance(node, _REFUSED):
            return f"its body has a {type(node).__name__}"
    if _returns_in_loops(func.body):
        return "it returns from inside a loop"
    return None


def _local_names(func: ast.FunctionDef) -> set[str]:
    names = {p.arg for p in _params(func)[1:]}
    for node in ast.walk(ast.Module(body=func.body, type_ignores=[])):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


class _Rename(ast.NodeTransformer):
    def __init__(self, names: set[str], prefix: str) -> None:
        self.names = names
        self.prefix = prefix

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id in self.names:
            node.id = self.prefix + node.id
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.ExceptHandler:
        self.generic_visit(node)
        if node.name in self.names:
            node.name = self.prefix + node.name
        return node


def _replace_returns(body: list[ast.stmt], target: str | None, wrapped: bool) -> list[ast.stmt]:
    """``body`` with each ``return v`` turned into ``target = v`` (or ``v`` for its effects) and, when
    ``wrapped``, a ``break`` out of the ``while True`` the caller puts around it."""

    def replace(stmt: ast.stmt) -> list[ast.stmt] | None:
        if not isinstance(stmt, ast.Return):
            return None
        out: list[ast.stmt] = []
        value = stmt.value if stmt.value is not None else ast.Constant(None)
        if target is not None:
            out.append(ast.copy_location(ast.Assign(targets=[ast.Name(target, ast.Store())], value=value), stmt))
        elif not isinstance(value, (ast.Constant, ast.Name)):
            out.append(ast.copy_location(ast.Expr(value), stmt))
        if wrapped:
            out.append(ast.copy_location(ast.Break(), stmt))
        return out

    return _map_statements(body, replace)


class Inliner:
    """Inlines the methods a module lists in ``_INLINE_WHEN_PURE`` (see the module docstring)."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.refused: dict[str, str] = {}  # name -> why it is not inlined
        self.inlined: dict[str, int] = {}  # name -> call sites replaced
        self.names = _listed_names(tree)
        self.methods: dict[str, ast.FunctionDef] = {}
        defined: dict[str, int] = {}
        for cls in (s for s in tree.body if isinstance(s, ast.ClassDef)):
            for stmt in cls.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name in self.names:
                    defined[stmt.name] = defined.get(stmt.name, 0) + 1
                    if isinstance(stmt, ast.FunctionDef):
                        self.methods.setdefault(stmt.name, stmt)
        for name in self.names:
            func = self.methods.get(name)
            why = ("it is not a method of a class of this module" if func is None
                   else "it is defined more than once" if defined[name] > 1 else _why_not(func))
            if why is not None:
                self.refused[name] = why
                self.methods.pop(name, None)
        # From the source as written, before run() rewrites any method in place.
        self._locals = {name: _local_names(func) for name, func in self.methods.items()}
        self._expanded: dict[str, list[ast.stmt]] = {}
        self._expanding: set[str] = set()

    def _body_of(self, name: str) -> list[ast.stmt]:
        """The method's body (no docstring) with its own listed calls already inlined."""
        if name not in self._expanded:
            self._expanding.add(name)
            body = [copy.deepcopy(s) for s in self.methods[name].body]
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]
            self._expanded[name] = self._statements(body)
            self._expanding.discard(name)
        return self._expanded[name]

    def _call(self, stmt: ast.stmt) -> tuple[str, list[ast.expr], str | None] | None:
        """(method, arguments, target) if ``stmt`` is a call this can inline."""
        target = None
        value: ast.expr | None = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                return None
            target = stmt.targets[0].id
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and isinstance(value.func.value, ast.Name) and value.func.value.id == "self"):
            return None
        name = value.func.attr
        func = self.methods.get(name)
        if func is None or name in self._expanding or value.keywords \
                or any(isinstance(a, ast.Starred) for a in value.args) \
                or len(value.args) != len(_params(func)) - 1:
            return None
        return name, value.args, target

    def _expand(self, stmt: ast.stmt, name: str, args: list[ast.expr], target: str | None) -> list[ast.stmt]:
        func = self.methods[name]
        prefix = f"_inl_{name}_"
        out: list[ast.stmt] = []
        for param, arg in zip(_params(func)[1:], args, strict=True):
            out.append(ast.copy_location(ast.Assign(targets=[ast.Name(prefix + param.arg, ast.Store())], value=arg),
                                         stmt))
        body = [_Rename(self._locals[name], prefix).visit(copy.deepcopy(s)) for s in self._body_of(name)]
        returns = [n for s in body for n in ast.walk(s) if isinstance(n, ast.Return)]
        if not returns or (len(returns) == 1 and body[-1] is returns[0]):
            out += _replace_returns(body, target, wrapped=False)
            if not returns and target is not None:
                out.append(ast.copy_location(ast.Assign(targets=[ast.Name(target, ast.Store())],
                                                        value=ast.Constant(None)), stmt))
        else:
            inner = _replace_returns(body, target, wrapped=True)
            if not isinstance(body[-1], ast.Return):
                inner.append(ast.copy_location(ast.Break(), stmt))
            out.append(ast.copy_location(ast.While(test=ast.Constant(True), body=inner, orelse=[]), stmt))
        self.inlined[name] = self.inlined.get(name, 0) + 1
        return out

    def _statements(self, body: list[ast.stmt]) -> list[ast.stmt]:
        def replace(stmt: ast.stmt) -> list[ast.stmt] | None:
            call = self._call(stmt)
            return None if call is None else self._expand(stmt, *call)

        return _map_statements(body, replace)

    def run(self) -> ast.Module:
        if not self.methods:
            return self.tree
        for cls in (s for s in self.tree.body if isinstance(s, ast.ClassDef)):
            for stmt in cls.body:
                if isinstance(stmt, ast.FunctionDef) and _is_method(stmt):
                    stmt.body = self._statements(stmt.body)
        return ast.fix_missing_locations(self.tree)


def inline(tree: ast.Module) -> ast.Module:
    """Inline the methods ``tree`` lists in ``_INLINE_WHEN_PURE`` (in place; returns ``tree``)."""
    return Inliner(tree).run()


def plan(tree: ast.Module) -> dict[str, Any]:
    """What :func:`inline` does to ``tree``: the call sites it replaces per name, and why any name is refused."""
    inliner = Inliner(tree)
    inliner.run()
    return {"inlined": dict(inliner.inlined), "refused": dict(inliner.refused)}
