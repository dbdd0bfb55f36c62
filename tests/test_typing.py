"""Users type-check against multiloop: ``mypy --strict`` accepts a program using the public API, with multiloop
found the way an installed package is found (site-packages, where only a ``py.typed`` marker makes mypy read
it). The package is copied into a scratch environment's site-packages for that, since an editable install is
invisible to mypy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv

import pytest

import multiloop

HERE = os.path.dirname(os.path.abspath(__file__))


def _site_with(tmp_path, *packages: str) -> str:
    """A fresh venv whose site-packages holds copies of ``packages``; returns its python."""
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = str(env_dir / "bin" / "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    for name in packages:
        module = __import__(name)
        shutil.copytree(os.path.dirname(module.__file__), os.path.join(purelib, name),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return python


def test_py_typed_marker_ships_in_the_package():
    assert os.path.isfile(os.path.join(os.path.dirname(multiloop.__file__), "py.typed"))


def test_a_user_program_passes_mypy_strict(tmp_path):
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    python = _site_with(tmp_path, "multiloop", "pluggy")
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                          "--python-executable", python, "--python-version",
                          f"{sys.version_info[0]}.{sys.version_info[1]}",
                          os.path.join(HERE, "typing", "user_program.py")],
                         capture_output=True, text=True, cwd=str(tmp_path), timeout=600,
                         env={**os.environ, "MYPYPATH": ""})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout


def test_without_the_marker_mypy_would_not_check_multiloop(tmp_path):
    """The check above is only meaningful if mypy honours py.typed here: without it, the import is refused."""
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    python = _site_with(tmp_path, "multiloop", "pluggy")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    os.remove(os.path.join(purelib, "multiloop", "py.typed"))
    program = tmp_path / "uses.py"
    program.write_text("import multiloop\n\nreveal_type(multiloop.new_loop)\n")
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-executable",
                          python, str(program)], capture_output=True, text=True, cwd=str(tmp_path), timeout=600)
    assert out.returncode != 0
    assert "missing library stubs or py.typed marker" in out.stdout
