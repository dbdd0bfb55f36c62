"""The pure-Python build's inliner (multiloop/_pure_inliner.py): inlining changes no result, refuses what it
cannot do exactly, and really is applied to the core's pass.

Each case runs the same source with and without inlining and compares what the methods return and do, for
every input; the refusals check that a method outside the rules is left as a call.
"""

from __future__ import annotations

import ast
import itertools
import textwrap
from pathlib import Path

import pytest

import multiloop
from multiloop import _pure_inliner
from multiloop._pure_inliner import inline, plan

CASES = textwrap.dedent("""
    _INLINE_WHEN_PURE = ("pick", "record", "nothing_returned", "total", "guarded", "outer", "inner", "bare")

    class Box:
        def __init__(self):
            self.log = []

        def pick(self, x, y):
            \"\"\"Several returns: the body runs in a while True the returns break out of.\"\"\"
            if x is None:
                return "none"
            if x > y:
                result = x - y
                return result
            while x < y:  # a loop of its own, with break and continue, must keep working
                x += 1
                if x % 2:
                    continue
                if x > 6:
                    break
            return ("end", x)

        def record(self, value):
            self.log.append(value)

        def nothing_returned(self, value):
            self.log.append(("nothing", value))

        def total(self, items):
            acc = 0
            for item in items:
                acc += item
            return acc

        def guarded(self, x):
            try:
                if x == 0:
                    return 1 / x
                return x * 2
            except ZeroDivisionError as exc:
                self.log.append(type(exc).__name__)
                return "divided by zero"
            finally:
                self.log.append("finally")

        def outer(self, x):
            y = self.inner(x)  # inlined into outer, and outer into its callers
            return y + 1

        def inner(self, x):
            return x * 10

        def bare(self, x):
            if x:
                return
            self.log.append("bare fell through")

        def run(self, x, y):
            result = "caller's"  # same name as a local of pick: must not be clobbered
            acc = -1  # and of total
            got = self.pick(x, y)
            self.record(got)
            self.record(self.log.__len__())  # an argument with a side-free call, evaluated once
            none = self.nothing_returned(x)
            count = self.total([x or 0, y])
            g = self.guarded(x or 0)
            o = self.outer(y)
            self.bare(x)
            return got, none, count, g, o, result, acc, list(self.log)
""")


def load(source: str, inlined: bool) -> dict:
    tree = ast.parse(source)
    if inlined:
        tree = inline(tree)
    namespace: dict = {}
    exec(compile(tree, "<cases>", "exec"), namespace)
    return namespace


def test_inlined_code_returns_and_does_what_the_calls_did() -> None:
    plain, inlined = load(CASES, False), load(CASES, True)
    for x, y in itertools.product([None, 0, 1, 3, 5, 9], [0, 2, 4, 8]):
        assert inlined["Box"]().run(x, y) == plain["Box"]().run(x, y), (x, y)


def test_what_is_inlined() -> None:
    report = plan(ast.parse(CASES))
    assert report["refused"] == {}
    # run: pick, record (twice), nothing_returned, total, guarded, outer (with inner inside), bare; outer: inner.
    assert report["inlined"]["record"] == 2
    assert set(report["inlined"]) == {"pick", "record", "nothing_returned", "total", "guarded", "outer", "inner",
                                      "bare"}
    run = next(f for c in inline(ast.parse(CASES)).body if isinstance(c, ast.ClassDef)
               for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "run")
    called = {n.func.attr for n in ast.walk(run) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert not called & set(report["inlined"])


REFUSED = {
    "return_in_loop": ("def m(self, x):\n    for i in x:\n        return i\n    return None", "returns from inside a loop"),
    "nested_def": ("def m(self):\n    def f():\n        return 1\n    return f()", "FunctionDef"),
    "lambda": ("def m(self):\n    return (lambda: 1)()", "Lambda"),
    "varargs": ("def m(self, *args):\n    return args", "plain positional"),
    "default": ("def m(self, x=1):\n    return x", "plain positional"),
    "keyword_only": ("def m(self, *, x):\n    return x", "plain positional"),
    "decorated": ("@staticmethod\ndef m(x):\n    return x", "first parameter"),
    "other_decorator": ("@some_decorator\ndef m(self):\n    return 1", "decorator"),
    "global": ("def m(self):\n    global G\n    G = 1", "Global"),
    "generator": ("def m(self):\n    yield 1", "Yield"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_methods_outside_the_rules_stay_calls(case: str) -> None:
    method, why = REFUSED[case]
    source = (f"_INLINE_WHEN_PURE = ('m',)\nclass C:\n{textwrap.indent(method, '    ')}\n"
              "    def caller(self):\n        value = self.m()\n        return value\n")
    report = plan(ast.parse(source))
    assert why in report["refused"]["m"]
    assert report["inlined"] == {}


def test_names_not_found_or_defined_twice_are_refused() -> None:
    source = ("_INLINE_WHEN_PURE = ('missing', 'twice')\nclass A:\n    def twice(self):\n        return 1\n"
              "class B:\n    def twice(self):\n        return 2\n")
    assert plan(ast.parse(source))["refused"] == {"missing": "it is not a method of a class of this module",
                                                  "twice": "it is defined more than once"}


@pytest.mark.parametrize("call", ["value = self.m(x=1)", "value = self.m(*[1])", "value = self.m(1, 2)",
                                  "value = other.m(1)", "value = 1 + self.m(1)", "value, other = self.m(1), 2",
                                  "self.attr = self.m(1)"])
def test_calls_that_are_not_a_whole_statement_of_positional_arguments_stay_calls(call: str) -> None:
    source = (f"_INLINE_WHEN_PURE = ('m',)\nclass C:\n    def m(self, x):\n        return x\n"
              f"    def caller(self, other):\n        {call}\n")
    assert plan(ast.parse(source))["inlined"] == {}


def test_a_method_calling_itself_is_not_expanded_forever() -> None:
    source = ("_INLINE_WHEN_PURE = ('m',)\nclass C:\n    def m(self, n):\n        if n <= 0:\n            return 0\n"
              "        rest = self.m(n - 1)\n        return rest + n\n"
              "    def caller(self, n):\n        value = self.m(n)\n        return value\n")
    plain, inlined = load(source, False), load(source, True)
    assert inlined["C"]().caller(4) == plain["C"]().caller(4) == 10


def test_an_error_in_inlined_code_points_at_the_methods_own_line() -> None:
    namespace = load(CASES, True)
    box = namespace["Box"]()
    with pytest.raises(TypeError) as info:
        box.run("text", 1)  # "text" > 1 in pick
    line = info.traceback[-1].lineno + 1  # pytest counts from 0
    assert CASES.splitlines()[line - 1].strip() == "if x > y:"


# -- the core -----------------------------------------------------------------------------------------------------

CORE = Path(multiloop.__file__).with_name("core.py")


def test_every_method_the_core_lists_is_inlined() -> None:
    """A change that takes a listed method outside the rules must fail here, not quietly cost the pure build
    its speed."""
    tree = _pure_inliner.ast.parse(CORE.read_text())
    from multiloop._pure_loader import fold
    report = plan(fold(tree))
    listed = _pure_inliner._listed_names(ast.parse(CORE.read_text()))
    assert listed and report["refused"] == {}
    assert set(report["inlined"]) == set(listed)


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_no_loop_class_overrides_an_inlined_method() -> None:
    """Inlining binds the call to the core's own method: a subclass's override would be bypassed."""
    import multiloop.core as core
    import multiloop.loop  # noqa: F401  # the concrete loop classes
    listed = _pure_inliner._listed_names(ast.parse(CORE.read_text()))
    for cls in _subclasses(core._CoreState):  # compiled, the methods are C functions, not attributes: by name
        for name in listed:
            assert name not in vars(cls), f"{cls.__qualname__} overrides {name}"
