"""What the compiled modules use of Cython's ``cython`` module, for running them as plain Python without Cython
installed. When Cython compiles them, ``import cython`` is resolved by the compiler and this module is not used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

#: False: this is the interpreted module (in a compiled module ``cython.compiled`` is a compile-time True).
compiled = False


def locals(**types: Any) -> Callable[[_F], _F]:  # noqa: A001 - Cython's name
    """C types of a function's locals and arguments (``.pxd`` style): no effect in Python."""
    return lambda func: func


def declare(_type: Any, value: Any) -> Any:
    """A module global typed as a C variable when compiled (``x = cython.declare(cython.long, 3)``): the value."""
    return value


# C types named in @cython.locals: their Python equivalents.
double = float
long = int
bint = bool
Py_ssize_t = int
int = int  # noqa: A001 - Cython's name
