"""Validating callbacks handed to the loop, fast enough to do on every call.

Stock asyncio checks "is this a coroutine?" only in debug mode, because ``inspect.iscoroutinefunction`` is slow.
multiloop always refuses coroutines (a clear TypeError beats a "coroutine was never awaited" warning later), and
pays one type test for plain functions and one set lookup for every other type it has seen before.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
from typing import Any

# Callback types that can never be coroutine functions: skip the (slow) inspect check for them. Grows as
# other such types are met (see _check_callback).
PLAIN_CALLABLES = set({
    types.BuiltinFunctionType, types.BuiltinMethodType, types.MethodWrapperType, types.WrapperDescriptorType,
    type((lambda: None).__get__), type([].append),
})
CORO_FLAGS = inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE
# Types whose coroutine-ness differs per object; never cached.
_PER_OBJECT_TYPES = frozenset({types.FunctionType, types.MethodType, functools.partial, functools.partialmethod})


def check_callback(callback: Any, method: str) -> None:
    """Refuse coroutines and non-callables, cheaply: stock asyncio only checks in debug mode, because
    ``inspect.iscoroutinefunction`` is slow; we check always, with a code-flag test for the common types."""
    tp = type(callback)
    if tp is types.FunctionType:
        if callback.__code__.co_flags & CORO_FLAGS:
            raise TypeError(f"coroutines cannot be used with {method}()")
        return
    if tp in PLAIN_CALLABLES:
        return
    if tp is types.MethodType:
        code = getattr(callback.__func__, "__code__", None)
        if code is not None and not code.co_flags & CORO_FLAGS:
            return
    if asyncio.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")
    if not callable(callback):
        raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")
    if tp not in _PER_OBJECT_TYPES:
        # For any other type the answer depends on the type alone (inspect only looks inside functions,
        # methods and partials): remember it, so e.g. the C Task's step wrapper costs one set lookup.
        PLAIN_CALLABLES.add(tp)


def checked_function(function: Any, method: str) -> Any:
    """``function`` (a plain Python function) once it is known not to be a coroutine function: the pure build's
    call_soon family remembers it (``LoopCore._checked_function``), so only the first of a run of calls with the
    same function pays for this call and the flag test (check_callback's, which raises with the method's name)."""
    check_callback(function, method)
    return function
