"""No warnings from multiloop on any supported Python: importing it, and using every public API, under
``-W error`` (DeprecationWarning above all: asyncio deprecates policies in 3.14 and removes them in 3.16).
Each check is a fresh interpreter, because import-time warnings only happen once per process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def run_python(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONASYNCIODEBUG")}
    return subprocess.run([sys.executable, "-W", "error", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=HERE)


def test_import_makes_no_warning_and_builds_no_policy_class():
    code = ("import sys, multiloop, multiloop.policy\n"
            "assert multiloop.policy._built is None, 'policy class built at import time'\n"
            "assert 'EventLoopPolicy' not in vars(multiloop)\n"
            "import multiloop.pytest_plugin, multiloop.__main__\n"
            "print('ok')")
    proc = run_python("-c", code)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout.strip() == "ok"


def test_trio_plugin_import_and_discovery_make_no_warning():
    pytest.importorskip("multiloop_trio")
    proc = run_python("-c", "import multiloop, multiloop_trio; print(sorted(b.name for b in multiloop.backends()))")
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert "trio" in proc.stdout


def test_info_command_makes_no_warning():
    proc = run_python("-m", "multiloop", "info")
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr


@pytest.mark.skipif(sys.version_info >= (3, 16), reason="asyncio has no policies from 3.16 on")
def test_event_loop_policy_class_is_built_once_for_those_who_ask_without_a_warning():
    code = ("import multiloop, asyncio\n"
            "P = multiloop.EventLoopPolicy\n"
            "from multiloop import EventLoopPolicy\n"
            "assert P is EventLoopPolicy is multiloop.policy.event_loop_policy_class()\n"
            "loop = P('poll').new_event_loop(); assert loop.backend == 'poll'; loop.close()\n"
            "print(P.__module__, P.__qualname__)")
    proc = run_python("-c", code)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout.strip() == "multiloop EventLoopPolicy"


def test_every_public_api_on_every_backend_makes_no_warning(backend):
    proc = run_python(os.path.join(HERE, "public_api_probe.py"), backend, timeout=180)
    assert proc.stderr == "" and proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip().endswith(f"ok {backend}")
