"""Build step for the optional compiled hot path (everything else is in pyproject.toml).

The modules named in ``multiloop/compiled.py`` (``EXTENSION_MODULES``) are compiled by Cython, in pure-Python
mode, from the very ``.py`` files that also ship and run as they are; ``.pxd`` files beside them add C-level
declarations. Each extension is built under the module's own name, so Python's import system prefers it;
``multiloop.compiled`` decides at import time whether to use the extensions or the ``.py`` sources
(``MULTILOOP_NO_EXTENSIONS=1`` at run time, or a stale build, selects the sources).

- ``MULTILOOP_NO_EXTENSIONS=1`` at build time: build nothing (a pure-Python install).
- No Cython, no C compiler, or a failing compile: a warning, and a pure-Python install; never a failed install.
- The C code is generated anew on every build (a few seconds): it must follow the directives of this build.
- Each built extension is recorded with the SHA-256 of the source it was compiled from (one stamp file per
  interpreter tag, ``multiloop/_extensions<tag>.json``), so an extension whose ``.py`` has changed since is never
  used. Generated C goes to ``build/cython/<tag>/``: builds for several interpreters at once (tox -p) never
  write the same file.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _declared(name: str) -> list[str]:
    """A tuple of module names from multiloop/compiled.py, read without importing the package."""
    tree = ast.parse((HERE / "multiloop" / "compiled.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                assert node.value is not None
                return list(ast.literal_eval(node.value))
    raise RuntimeError(f"multiloop/compiled.py declares no {name}")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _warn(message: str) -> None:
    print(f"\nWARNING (multiloop-asyncio): {message}\n"
          f"  Installing the pure-Python modules only (they are complete; the compiled ones are faster).\n",
          file=sys.stderr, flush=True)


def _tag() -> str:
    """This interpreter's extension tag, e.g. ``.cpython-314t-x86_64-linux-gnu`` (its .so suffix, less .so)."""
    import importlib.machinery
    return importlib.machinery.EXTENSION_SUFFIXES[0].rsplit(".", 1)[0]


def _c_dir() -> str:
    return str(Path("build") / "cython" / _tag().strip("."))


def _extensions() -> list:
    if _flag("MULTILOOP_NO_EXTENSIONS"):
        print("multiloop-asyncio: MULTILOOP_NO_EXTENSIONS is set: not building the compiled modules",
              file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError as exc:
        _warn(f"Cython is not available ({exc}).")
        return []
    modules = _declared("EXTENSION_MODULES")
    free_threading = set(_declared("FREE_THREADING_COMPATIBLE"))
    directives = {
        "language_level": 3,
        "binding": True,  # functions keep __name__, __qualname__, introspectable signatures (asyncio reprs)
        "embedsignature": True,
        "boundscheck": False,
        "wraparound": True,  # the sources index with negative numbers in places
        "cdivision": True,
        "always_allow_keywords": True,  # def f(x) called as f(x=...) works as in Python
        "annotation_typing": False,  # annotations are for mypy; C types come from the .pxd files only
    }
    try:
        out = []
        for name in modules:
            # Declared only where it is true (multiloop/compiled.py says why for each): a module without it
            # makes a free-threaded interpreter turn the GIL back on when it is imported.
            module_directives = directives | {"freethreading_compatible": name in free_threading}
            out += cythonize([Extension(name, [name.replace(".", "/") + ".py"])],
                             compiler_directives=module_directives, quiet=True, build_dir=_c_dir(),
                             # Always: Cython does not track directives, and an in-place tree may hold C
                             # generated for another interpreter with other ones.
                             force=True)
        return out
    except Exception as exc:  # noqa: BLE001 - any failure means: install the pure-Python modules
        _warn(f"Cython could not translate the hot-path modules ({type(exc).__name__}: {exc}).")
        return []


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: a module that does not compile is left to its .py source.

    Compiled modules import each other's C types, so they are used only all together; ``multiloop.compiled``
    checks that at import time (a partial build runs as pure Python)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - e.g. no C compiler at all
            _warn(f"the compiled modules could not be built ({type(exc).__name__}: {exc}).")
            return
        self._write_stamp()

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _warn(f"{ext.name} could not be compiled ({type(exc).__name__}: {exc}).")
            ext._multiloop_failed = True

    def _write_stamp(self) -> None:
        built: dict = {}
        for ext in self.extensions:
            if getattr(ext, "_multiloop_failed", False):
                continue
            target = Path(self.get_ext_fullpath(ext.name))
            if not target.exists():
                continue
            source = HERE / (ext.name.replace(".", "/") + ".py")
            built[ext.name] = {"file": target.name,
                               "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
        if not built:
            return
        try:
            import Cython
            version = Cython.__version__
        except ImportError:
            version = "?"
        # One stamp per interpreter tag: in-place builds for several Pythons share the package directory.
        stamp = Path(self.get_ext_fullpath("multiloop.x")).parent / f"_extensions{_tag()}.json"
        stamp.write_text(json.dumps({"cython": version, "modules": built}, indent=1, sort_keys=True) + "\n")


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
